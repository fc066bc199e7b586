"""What the workflow sends at each milestone renders with its template, with real fields."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from notifications.render import render
from playbooks.loader import load_playbook
from schemas.documents import DocumentKind, DocumentProblem
from schemas.enums import Stage
from tests.factories import profile
from workflows import messages
from workflows.routing import build_plan

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SEED = Path(__file__).resolve().parents[2] / "playbooks" / "onboarding.yaml"


@pytest.fixture(scope="module")
def plan():
    return build_plan(load_playbook(SEED), profile())


def test_estimated_completion_adds_the_rest_of_this_stage_and_every_later_sla(plan):
    eta = messages.estimated_completion(plan, Stage.DOCUMENT_COLLECTION, timedelta(hours=5), NOW)
    assert eta == NOW + timedelta(hours=5 + 8 + 4 + 2)  # + compliance, setup, final review


def test_every_client_milestone_renders_with_case_ref_and_next_steps(plan):
    client = profile()
    eta = NOW + timedelta(hours=30)
    built = [
        messages.case_created("C-1", client, plan, eta),
        messages.documents_needed(
            "C-1",
            client,
            [
                DocumentProblem(
                    kind=DocumentKind.PROOF_OF_ADDRESS,
                    problem="too_old",
                    detail=f"issued {date(2026, 1, 2)}, must be within 90 days",
                )
            ],
            {"proof_of_address": "Proof of address"},
            eta,
            NOW + timedelta(hours=4),
            1,
        ),
        messages.documents_received("C-1", client, ["Passport", "Utility bill"], eta, 1),
        messages.compliance_approved("C-1", client, ["Sanctions and PEP screening"], NOW, eta, 1),
        messages.provisioning_started("C-1", client, plan, NOW, eta, 1),
        messages.setup_completed("C-1", client, plan, "ACC00100000017", NOW, eta, 1),
        messages.welcome_package("C-1", client, plan, NOW),
    ]
    assert [m.milestone for m in built] == [
        "case_created",
        "documents_needed",
        "documents_received",
        "compliance_approved",
        "account_provisioning_started",
        "setup_completed",
        "welcome_package",
    ]
    for message in built:
        rendered = render(message.milestone, message.context)
        assert "C-1" in rendered.text and "C-1" in (rendered.sms or "")
        for step in message.context["next_steps"]:
            assert step in rendered.text
        assert message.recipient.email == "ada@example.com"
    needed = render(built[1].milestone, built[1].context)
    assert "must be within 90 days" in needed.text
    assert built[1].urgent  # asking for documents goes by SMS first where the client allows
    completed = render(built[5].milestone, built[5].context)
    assert "ending in 0017" in completed.text
    assert "ACC00100000017" not in completed.text + completed.html  # last 4 digits only


@pytest.mark.parametrize(
    "milestone", ["sla_warning", "sla_at_risk", "sla_breached", "sla_escalated"]
)
def test_staff_sla_notices_render(milestone):
    extra: dict[str, object] = {
        "sla_at_risk": {"risk_reason": "only 0 of 1 items done"},
        "sla_escalated": {"escalated_to": "head_of_operations", "escalation_level": 2},
    }.get(milestone, {})  # type: ignore[assignment]
    due = NOW + (
        timedelta(hours=2) if milestone in ("sla_warning", "sla_at_risk") else -timedelta(hours=1)
    )
    notice = messages.staff_sla_notice(
        ref="C-9",
        client=profile(),
        milestone=milestone,
        role="onboarding_lead",
        stage=Stage.DOCUMENT_COLLECTION,
        stage_started_at=NOW - timedelta(hours=20),
        due_at=due,
        owner="onboarding_team",
        now=NOW,
        extra=extra,
    )
    assert notice.audience == "staff" and notice.recipient.name == "onboarding_lead"
    rendered = render(notice.milestone, notice.context)
    assert "C-9" in rendered.subject + rendered.text
