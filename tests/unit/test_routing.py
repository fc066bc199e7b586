"""Playbook + client profile -> plan: what each kind of client goes through."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from playbooks.loader import load_playbook
from schemas.enums import Stage
from schemas.plan import Playbook
from tests.factories import profile
from workflows.routing import build_plan

SEED = Path(__file__).resolve().parents[2] / "playbooks" / "onboarding.yaml"


@pytest.fixture(scope="module")
def playbook() -> Playbook:
    return load_playbook(SEED)


def task_keys(plan, stage: Stage) -> list[str]:
    return [t.key for t in plan.spec(stage).tasks]


def test_seed_playbook_has_the_reference_stage_slas(playbook):
    hours = {s.stage: s.sla.total_seconds() / 3600 for s in playbook.stages if s.sla}
    assert hours == {
        Stage.DOCUMENT_COLLECTION: 24,
        Stage.COMPLIANCE_REVIEW: 8,
        Stage.ACCOUNT_SETUP: 4,
        Stage.FINAL_REVIEW: 2,
    }


def test_enterprise_international_premium_gets_security_review_edd_and_account_manager(playbook):
    plan = build_plan(
        playbook,
        profile(
            client_type="enterprise",
            tier="premium",
            country="US",
            regulatory_requirements=["fatca"],
        ),
    )
    stages = [s.stage for s in plan.stages]
    assert stages.index(Stage.SECURITY_REVIEW) == stages.index(Stage.COMPLIANCE_REVIEW) + 1
    assert "enhanced_due_diligence" in task_keys(plan, Stage.COMPLIANCE_REVIEW)
    assert "fatca_self_certification" in task_keys(plan, Stage.COMPLIANCE_REVIEW)
    assert "assign_account_manager" in task_keys(plan, Stage.ACCOUNT_SETUP)
    assert {"dual_approval", "enhanced_due_diligence", "dedicated_account_manager"} <= set(
        plan.flags
    )
    assert plan.playbook_version == playbook.version


def test_standard_domestic_individual_gets_none_of_those(playbook):
    plan = build_plan(playbook, profile())
    assert Stage.SECURITY_REVIEW not in [s.stage for s in plan.stages]
    assert task_keys(plan, Stage.COMPLIANCE_REVIEW) == ["sanctions_screening", "risk_assessment"]
    assert task_keys(plan, Stage.ACCOUNT_SETUP) == ["provision_account"]
    assert plan.flags == []


def test_high_risk_country_needs_edd_once_and_dual_approval(playbook):
    plan = build_plan(playbook, profile(country="IR"))
    keys = task_keys(plan, Stage.COMPLIANCE_REVIEW)
    assert keys.count("enhanced_due_diligence") == 1  # international + high risk both add it
    assert "source_of_funds" in keys
    assert {"high_risk", "dual_approval"} <= set(plan.flags)


def test_unknown_regulatory_requirement_still_gets_a_check(playbook):
    plan = build_plan(playbook, profile(regulatory_requirements=["psd2"]))
    assert "check_psd2" in task_keys(plan, Stage.COMPLIANCE_REVIEW)


def test_a_playbook_with_a_bad_duration_is_refused():
    with pytest.raises(ValidationError, match="not a duration"):
        Playbook.model_validate(
            {
                "version": "x",
                "home_country": "GB",
                "stages": [
                    {"stage": "acknowledgement", "title": "a", "owner_role": "o", "sla": "soon"}
                ],
            }
        )
