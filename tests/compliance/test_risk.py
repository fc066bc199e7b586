"""Risk scoring on concrete clients: the level, the score and the stated reasons."""

from __future__ import annotations

import pytest

from activities.risk import assess_risk, risk_level_for
from core.settings import FATF_HIGH_RISK, FATF_INCREASED_MONITORING
from schemas.compliance import RiskLevel
from tests.factories import profile


def risk(decision: str = "clear", score: float = 0.0, **client: object):
    return assess_risk(
        client=profile(**client),
        screening_decision=decision,
        screening_score=score,
        high_risk_countries=FATF_HIGH_RISK,
        increased_monitoring_countries=FATF_INCREASED_MONITORING,
    )


def test_plain_individual_is_low():
    assert risk() == (RiskLevel.LOW, 5, ["client type individual"])


def test_business_and_enterprise_sit_a_little_above_individuals():
    assert risk(client_type="business")[:2] == (RiskLevel.LOW, 10)
    assert risk(client_type="enterprise")[:2] == (RiskLevel.LOW, 15)


def test_potential_match_dominates():
    level, score, factors = risk("potential_match", 91.9)
    assert (level, score) == (RiskLevel.HIGH, 75)
    assert factors[0] == "potential sanctions/PEP list match (score 91.9)"


def test_fatf_high_risk_country_is_high_even_when_clear():
    level, score, factors = risk(country="IR")
    assert (level, score) == (RiskLevel.HIGH, 70)
    assert "FATF high-risk country IR" in factors


def test_increased_monitoring_raises_an_enterprise_to_medium():
    level, score, factors = risk(country="NG", client_type="enterprise")
    assert (level, score) == (RiskLevel.MEDIUM, 35)
    assert factors == ["FATF increased-monitoring country NG", "client type enterprise"]


def test_increased_monitoring_alone_keeps_an_individual_low():
    assert risk(country="VE")[:2] == (RiskLevel.LOW, 25)


def test_declared_pep_is_at_least_medium():
    level, score, factors = risk(regulatory_requirements=["aml_pep"])
    assert (level, score) == (RiskLevel.MEDIUM, 35)
    assert "declared politically exposed person (aml_pep)" in factors


def test_other_requirements_add_a_little():
    level, score, factors = risk(regulatory_requirements=["fatca", "mifid_ii", "emir"])
    assert (level, score) == (RiskLevel.LOW, 5 + 3 + 5 + 2)
    assert "regulatory requirement emir" in factors


@pytest.mark.parametrize(
    ("score", "expected"),
    [(69.9, 5), (70.0, 15), (84.9, 15)],
)
def test_near_miss_scores_raise_a_little(score, expected):
    assert risk("clear", score)[1] == expected


def test_near_miss_is_not_counted_on_top_of_a_match():
    _, score, factors = risk("potential_match", 86.0)
    assert score == 75 and not any("near-miss" in f for f in factors)


def test_pep_in_monitored_country_with_near_miss_is_high():
    level, score, _ = risk(
        "clear", 80.0, country="NG", client_type="business", regulatory_requirements=["aml_pep"]
    )
    assert (level, score) == (RiskLevel.HIGH, 20 + 10 + 30 + 10)


def test_score_is_capped_at_100():
    level, score, _ = risk(
        "potential_match",
        99.0,
        country="KP",
        client_type="enterprise",
        regulatory_requirements=["aml_pep"],
    )
    assert (level, score) == (RiskLevel.HIGH, 100)


def test_country_lists_are_case_insensitive():
    _, score, _ = assess_risk(
        client=profile(country="ir"),
        screening_decision="clear",
        screening_score=0,
        high_risk_countries=["ir"],
        increased_monitoring_countries=[],
    )
    assert score == 70


def test_unknown_decision_is_refused_not_treated_as_clear():
    with pytest.raises(ValueError, match="unknown screening decision"):
        risk("error")


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0, RiskLevel.LOW),
        (34, RiskLevel.LOW),
        (35, RiskLevel.MEDIUM),
        (64, RiskLevel.MEDIUM),
        (65, RiskLevel.HIGH),
        (100, RiskLevel.HIGH),
    ],
)
def test_level_thresholds(score, level):
    assert risk_level_for(score) is level
