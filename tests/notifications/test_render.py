"""Rendering every milestone with real dynamic fields."""

from __future__ import annotations

import html as html_lib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jinja2 import StrictUndefined, UndefinedError
from pydantic import ValidationError

from notifications import (
    CLIENT_MESSAGES,
    CLIENT_MILESTONES,
    CONTEXT_MODELS,
    GENERIC_MILESTONES,
    SMS_MAX_CHARS,
    STAFF_NOTICES,
    Branding,
    Milestone,
    render,
    sample_context,
)
from notifications.contexts import (
    DocumentsNeededContext,
    NeededDocument,
    SetupCompletedContext,
    SlaEscalatedContext,
)
from notifications.render import template_environment

NOW = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)


def base_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "case_ref": "ONB-2025-004711",
        "client_name": "Blue Harbour Trading Ltd",
        "status": "Waiting for your documents",
        "next_steps": ["Upload the certified passport copy", "Confirm your tax residency"],
        "estimated_completion": NOW + timedelta(days=9),
        "portal_url": "https://portal.example.com/cases/ONB-2025-004711",
    }
    fields.update(overrides)
    return fields


def sla_fields(**overrides: Any) -> dict[str, Any]:
    fields = base_fields(
        status="KYC review needs attention",
        next_steps=["Review the flagged director", "Ping the compliance officer"],
        portal_url=None,
    )
    fields.update(
        stage="KYC review",
        stage_started_at=NOW - timedelta(hours=30),
        sla_due_at=NOW + timedelta(hours=2),
        assignee="Marta Nowak",
        case_url="https://ops.example.com/cases/ONB-2025-004711",
    )
    fields.update(overrides)
    return fields


# Real dynamic fields per onboarding milestone and the values that must show up.
# The generic milestones (any case type) have theirs in test_generic_milestones.py.
CASES: dict[Milestone, tuple[dict[str, Any], list[str]]] = {
    Milestone.CASE_CREATED: (
        base_fields(
            product_name="Multi-currency Business Account",
            required_documents=["Articles of association", "Shareholder register"],
        ),
        ["Multi-currency Business Account", "Articles of association", "Shareholder register"],
    ),
    Milestone.DOCUMENTS_RECEIVED: (
        base_fields(
            documents_received=["Articles of association", "Utility bill"],
            documents_outstanding=["Shareholder register"],
        ),
        ["Articles of association", "Utility bill", "Shareholder register", "Still outstanding"],
    ),
    Milestone.DOCUMENTS_NEEDED: (
        base_fields(
            documents_needed=[
                {"name": "Passport of Tom Reed", "reason": "Expired on 1 May 2025"},
                {"name": "Bank statement", "reason": "Missing pages 2-3"},
            ],
            respond_by=NOW + timedelta(days=4),
        ),
        ["Passport of Tom Reed", "Expired on 1 May 2025", "Bank statement", "6 June 2025"],
    ),
    Milestone.COMPLIANCE_APPROVED: (
        base_fields(
            approved_at=NOW,
            checks_completed=["PEP screening", "Adverse media check"],
        ),
        ["PEP screening", "Adverse media check", "2 June 2025"],
    ),
    Milestone.ACCOUNT_PROVISIONING_STARTED: (
        base_fields(accounts=["GBP Operating Account", "USD Collection Account"], started_at=NOW),
        ["GBP Operating Account", "USD Collection Account"],
    ),
    Milestone.SETUP_COMPLETED: (
        base_fields(
            account_name="GBP Operating Account",
            account_number_last4="0937",
            completed_at=NOW,
        ),
        ["GBP Operating Account", "0937"],
    ),
    Milestone.WELCOME_PACKAGE: (
        base_fields(
            relationship_manager_name="Amara Lindqvist",
            relationship_manager_email="amara.lindqvist@example.com",
            resources=[
                {"title": "Treasury quick start", "url": "https://example.com/treasury"},
            ],
        ),
        [
            "Amara Lindqvist",
            "amara.lindqvist@example.com",
            "Treasury quick start",
            "https://example.com/treasury",
        ],
    ),
    Milestone.SLA_WARNING: (
        sla_fields(time_remaining=timedelta(hours=2)),
        ["KYC review", "Marta Nowak", "2 h", "2025-06-02 16:00 UTC"],
    ),
    Milestone.SLA_AT_RISK: (
        sla_fields(time_remaining=timedelta(minutes=45), risk_reason="Registry lookup is down"),
        ["KYC review", "45 min", "Registry lookup is down"],
    ),
    Milestone.SLA_BREACHED: (
        sla_fields(overdue_by=timedelta(hours=3, minutes=20)),
        ["KYC review", "3 h 20 min", "Marta Nowak"],
    ),
    Milestone.SLA_ESCALATED: (
        sla_fields(
            overdue_by=timedelta(days=2, hours=1),
            escalated_to="Regional Compliance Lead",
            escalation_level=3,
        ),
        ["Regional Compliance Lead", "level 3", "2 d 1 h"],
    ),
}


def test_every_milestone_has_a_case_model_and_sample() -> None:
    assert not set(CASES) & set(GENERIC_MILESTONES)
    assert set(CASES) | set(GENERIC_MILESTONES) == set(Milestone) == set(CONTEXT_MODELS)
    assert len(CLIENT_MILESTONES) == 6
    assert set(CLIENT_MESSAGES) | STAFF_NOTICES == set(Milestone)
    for milestone in Milestone:
        assert isinstance(sample_context(milestone), CONTEXT_MODELS[milestone])


@pytest.mark.parametrize("milestone", list(CASES), ids=str)
def test_render_carries_case_ref_next_steps_and_fields(milestone: Milestone) -> None:
    fields, expected = CASES[milestone]
    msg = render(milestone, fields)

    ref = fields["case_ref"]
    assert ref in msg.subject
    assert ref in msg.text
    assert ref in msg.html
    assert "\n" not in msg.subject
    for step in fields["next_steps"]:
        assert step in msg.text
        assert html_lib.escape(step) in msg.html
    for value in expected:
        assert value in msg.text, value
        assert html_lib.escape(value) in msg.html, value
    assert msg.html.lstrip().startswith("<!DOCTYPE html>")
    assert f"<title>{html_lib.escape(msg.subject)}</title>" in msg.html

    if milestone in STAFF_NOTICES:
        assert msg.sms is None
        assert "Do not forward to the client" in msg.text
        assert fields["case_url"] in msg.html
    else:
        assert msg.sms is not None
        assert len(msg.sms) <= SMS_MAX_CHARS
        assert msg.sms.isascii()
        assert ref in msg.sms
        assert fields["next_steps"][0] in msg.sms
        assert fields["portal_url"] in msg.sms
        assert fields["client_name"] in msg.text
        assert fields["portal_url"] in msg.html
        assert "11 June 2025" in msg.text  # estimated completion


@pytest.mark.parametrize("milestone", list(Milestone), ids=str)
def test_samples_render(milestone: Milestone) -> None:
    msg = render(milestone, sample_context(milestone))
    assert "ONB-2025-000123" in msg.subject
    assert (msg.sms is None) == (milestone in STAFF_NOTICES)


def test_context_survives_json_round_trip() -> None:
    """The outbox stores contexts as JSON; rendering from it must be identical."""
    for milestone in Milestone:
        ctx = sample_context(milestone)
        assert render(milestone, json.loads(ctx.model_dump_json())) == render(milestone, ctx)


def test_html_escapes_client_controlled_text() -> None:
    fields, _ = CASES[Milestone.DOCUMENTS_NEEDED]
    evil = '<script>alert("x")</script>'
    msg = render(
        Milestone.DOCUMENTS_NEEDED,
        {**fields, "client_name": evil, "documents_needed": [{"name": evil, "reason": "<b>"}]},
    )
    assert "<script>" not in msg.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in msg.html
    assert "<b>" not in msg.html
    assert evil in msg.text  # plain text is not HTML: no entities there


def test_html_title_is_escaped_even_though_subject_is_text() -> None:
    fields, _ = CASES[Milestone.SLA_AT_RISK]
    msg = render(Milestone.SLA_AT_RISK, {**fields, "risk_reason": "</title><img src=x>"})
    assert "</title><img" in msg.subject
    assert "<img" not in msg.html
    assert "&lt;/title&gt;&lt;img src=x&gt;" in msg.html


def test_staff_notice_without_assignee_says_unassigned() -> None:
    fields, _ = CASES[Milestone.SLA_BREACHED]
    msg = render(Milestone.SLA_BREACHED, {**fields, "assignee": None})
    assert "unassigned" in msg.text
    assert "unassigned" in msg.html


@pytest.mark.parametrize(
    ("milestone", "mutate"),
    [
        (Milestone.CASE_CREATED, lambda f: f.pop("next_steps")),
        (Milestone.CASE_CREATED, lambda f: f.pop("product_name")),
        (Milestone.CASE_CREATED, lambda f: f.update(next_steps="Upload things")),
        (Milestone.CASE_CREATED, lambda f: f.update(next_steps=[])),
        (Milestone.CASE_CREATED, lambda f: f.update(client_name=42)),
        (Milestone.CASE_CREATED, lambda f: f.update(unexpected="x")),
        (Milestone.CASE_CREATED, lambda f: f.pop("estimated_completion")),
        (Milestone.CASE_CREATED, lambda f: f.update(estimated_completion=datetime(2025, 1, 1))),
        (Milestone.CASE_CREATED, lambda f: f.update(portal_url="not a url")),
        (Milestone.CASE_CREATED, lambda f: f.update(case_ref="")),
        (Milestone.SETUP_COMPLETED, lambda f: f.update(account_number_last4="12345678")),
        (Milestone.SETUP_COMPLETED, lambda f: f.update(account_number="DE89370400440532013000")),
        (Milestone.DOCUMENTS_NEEDED, lambda f: f.update(documents_needed=[])),
        (Milestone.DOCUMENTS_NEEDED, lambda f: f.update(documents_needed=[{"name": "Passport"}])),
        (Milestone.SLA_BREACHED, lambda f: f.update(overdue_by=timedelta(0))),
        (Milestone.SLA_ESCALATED, lambda f: f.update(escalation_level="high")),
        (Milestone.SLA_WARNING, lambda f: f.pop("stage")),
    ],
)
def test_missing_or_wrong_fields_are_rejected(milestone: Milestone, mutate: Any) -> None:
    fields = json.loads(json.dumps(CASES[milestone][0], default=str))
    mutate(fields)
    with pytest.raises(ValidationError):
        render(milestone, fields)


def test_context_model_for_another_milestone_is_rejected() -> None:
    with pytest.raises(TypeError, match="DocumentsNeededContext"):
        render(Milestone.DOCUMENTS_NEEDED, sample_context(Milestone.SETUP_COMPLETED))


def test_models_validate_on_construction() -> None:
    with pytest.raises(ValidationError):
        SetupCompletedContext(**base_fields(), account_name="X", completed_at=NOW)


def test_long_next_steps_are_shortened_in_sms_but_keep_ref_and_link() -> None:
    long_steps = [f"Step {i}: " + "please review the attached instructions " * 4 for i in range(5)]
    portal = "https://portal.example.com/cases/" + "x" * 150
    ctx = DocumentsNeededContext(
        **base_fields(next_steps=long_steps, portal_url=portal),
        documents_needed=[NeededDocument(name="Passport", reason="Expired")],
        respond_by=None,
    )
    msg = render(Milestone.DOCUMENTS_NEEDED, ctx)
    assert msg.sms is not None
    assert len(msg.sms) <= SMS_MAX_CHARS
    assert "ONB-2025-004711" in msg.sms
    assert msg.sms.endswith(portal)
    assert "..." in msg.sms
    # the email keeps every step in full
    for step in long_steps:
        assert step.strip() in msg.text


def test_branding_is_applied() -> None:
    brand = Branding(
        brand_name="Fjord Private Bank",
        primary_color="#00AA77",
        postal_address="1 Harbour Street, Oslo",
    )
    msg = render(Milestone.SETUP_COMPLETED, sample_context(Milestone.SETUP_COMPLETED), brand)
    assert "Fjord Private Bank" in msg.html
    assert "#00AA77" in msg.html
    assert "1 Harbour Street, Oslo" in msg.html
    assert "1 Harbour Street, Oslo" in msg.text
    assert msg.sms is not None
    assert msg.sms.startswith("Fjord Private Bank:")
    with pytest.raises(ValidationError):
        Branding(primary_color="red")


def test_environment_is_strict_and_autoescapes_only_html() -> None:
    env = template_environment()
    assert env.undefined is StrictUndefined
    with pytest.raises(UndefinedError):
        env.from_string("{{ ctx.nope }}").render(ctx=sample_context(Milestone.CASE_CREATED))
    templates = set(env.list_templates())
    for milestone in Milestone:
        for part in ("subject.txt.j2", "body.txt.j2", "body.html.j2"):
            assert f"{milestone.value}/{part}" in templates
        assert (f"{milestone.value}/sms.txt.j2" in templates) == (milestone in CLIENT_MESSAGES)


def test_escalation_context_from_models() -> None:
    ctx = SlaEscalatedContext(
        **sla_fields(),
        overdue_by=timedelta(minutes=5),
        escalated_to="COO",
        escalation_level=1,
    )
    msg = render("sla_escalated", ctx)
    assert msg.subject.startswith("[SLA escalated L1] ONB-2025-004711")
    assert "5 min" in msg.text


# ------------------------------------------------------------------ the recipient's zone
def test_client_dates_are_on_the_clients_calendar() -> None:
    ctx = sample_context(Milestone.CASE_CREATED).model_copy(
        update={"estimated_completion": datetime(2025, 3, 3, 23, 30, tzinfo=UTC)}
    )
    tokyo = render(Milestone.CASE_CREATED, ctx, time_zone="Asia/Tokyo")
    london = render(Milestone.CASE_CREATED, ctx, time_zone="Europe/London")
    assert "Estimated completion: 4 March 2025" in tokyo.text  # already the 4th in Tokyo
    assert "Estimated completion: 3 March 2025" in london.text
    assert "4 March 2025" in tokyo.html
    unknown = render(Milestone.CASE_CREATED, ctx, time_zone="Mars/Olympus")
    assert "Estimated completion: 3 March 2025" in unknown.text  # falls back to UTC


def test_times_carry_the_recipients_zone_or_utc() -> None:
    berlin = render(
        Milestone.SLA_WARNING, sample_context(Milestone.SLA_WARNING), time_zone="Europe/Berlin"
    )
    plain = render(Milestone.SLA_WARNING, sample_context(Milestone.SLA_WARNING))
    # the sample stage started 2025-03-01 17:30 UTC: 18:30 in Berlin (CET)
    assert "2025-03-01 18:30 CET" in berlin.text
    assert "2025-03-01 17:30 UTC" in plain.text
