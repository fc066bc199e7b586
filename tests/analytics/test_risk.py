"""Breach prediction: beats the shipped 60/40 rule on a small seeded history; predicts for
open stages; stored form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics import risk
from analytics.risk import BreachModel, OpenStage
from schemas.history import CaseFacts

FACTS = CaseFacts(
    case_ref="OPEN-1",
    case_type="client_onboarding",
    client_type="business",
    tier="standard",
    country="DE",
    service_requirements=(),
    documents_submitted_at_creation=False,
    created_at=datetime(2026, 3, 2, 8, tzinfo=UTC),
)


@pytest.fixture(scope="module")
def breach_model(history) -> BreachModel:
    return risk.fit(history, holdout=0)


def test_model_beats_the_rule_on_precision_and_recall(history):
    result = risk.evaluate(history, 0.3)
    model, rule = result["model"], result["rule"]
    assert result["checks"] > 100 and result["breaches"] > 0
    assert model["precision"] > rule["precision"]
    assert model["recall"] > rule["recall"]
    assert set(result["by_stage"]) >= {"document_collection", "compliance_review", "final_review"}


def test_open_stages_late_on_friday_are_riskier_than_fresh_ones(breach_model):
    friday = datetime(2026, 3, 6, 12, tzinfo=UTC)
    late = OpenStage(FACTS, "compliance_review", friday, friday + timedelta(hours=5))
    fresh = OpenStage(
        FACTS, "compliance_review", friday - timedelta(days=4), friday - timedelta(days=4)
    )
    p_late, p_fresh = breach_model.predict([late, fresh])
    assert 0 <= p_fresh < p_late <= 1
    assert p_late >= breach_model.threshold  # 3 h left, 30 min of office hours among them
    with pytest.raises(ValueError, match="no SLA budget"):
        breach_model.predict([OpenStage(FACTS, "welcome", friday, friday)])


def test_rule_is_the_60_40_check():
    import numpy as np

    at_risk = risk.rule(np.array([0.5, 0.6, 0.6, 0.9]), np.array([0.0, 0.39, 0.4, 0.1]))
    assert list(at_risk) == [False, True, False, True]


def test_stored_and_reloaded_breach_model_predicts_identically(breach_model):
    again = BreachModel.from_blob(breach_model.to_blob())
    at = datetime(2026, 3, 4, 9, tzinfo=UTC)
    stages = [
        OpenStage(FACTS, stage, at, at + timedelta(hours=h), stage_load=load)
        for stage in ("document_collection", "compliance_review", "account_setup")
        for h, load in ((1, None), (3, 12.0))
    ]
    assert again.predict(stages) == breach_model.predict(stages)
    assert again.threshold == breach_model.threshold
    assert breach_model.to_record().kind == "breach"
