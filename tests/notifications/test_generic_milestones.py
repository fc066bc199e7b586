"""The generic milestones any case type can send: case_update, proposal (client);
task_reminder, task_overdue, case_reopened (staff)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from markupsafe import escape
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities
from notifications import (
    CLIENT_MESSAGES,
    CLIENT_MILESTONES,
    CONTEXT_MODELS,
    GENERIC_MILESTONES,
    SMS_MAX_CHARS,
    STAFF_NOTICES,
    Milestone,
    preview,
    render,
    sample_context,
)
from notifications.contexts import (
    CaseReopenedContext,
    CaseUpdateContext,
    ProposalContext,
    TaskOverdueContext,
    TaskReminderContext,
    WorkAssignedContext,
)
from schemas.enums import Channel
from schemas.notifications import NotifyInput, Recipient

NOW = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)
PORTAL = "https://portal.example.com/p/ORD-2025-000042"
OPS = "https://ops.example.com/cases/ORD-2025-000042"
EVIL = '<script>alert("x")</script>'
EVIL_ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"


def case_update_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "case_ref": "ORD-2025-000042",
        "client_name": "Blue Harbour Trading Ltd",
        "case_title": "Order approval",
        "status": "Approved",
        "heading": "Your order has been approved",
        "lines": [
            "Our credit team approved your order of 12 industrial freezers.",
            "Dispatch is planned for next week;\nwe will send tracking details by email.",
        ],
        "next_steps": ["Confirm the delivery address in the portal"],
        "estimated_completion": NOW + timedelta(days=9),
        "portal_url": PORTAL,
    }
    fields.update(overrides)
    return fields


def proposal_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "case_ref": "RET-2025-000007",
        "client_name": "Blue Harbour Trading Ltd",
        "case_title": "Return request",
        "proposal": (
            "We offer a partial refund of GBP 310.00 for the two dented units.\n\n"
            "You keep the goods; no return shipment is needed."
        ),
        "respond_by": NOW + timedelta(days=5),
        "portal_url": "https://portal.example.com/p/RET-2025-000007",
    }
    fields.update(overrides)
    return fields


def task_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "case_ref": "ORD-2025-000042",
        "task_title": "Verify the customer's credit limit",
        "stage": "Credit review",
        "assignee_role": "credit_analyst",
        "due_at": NOW + timedelta(hours=4),
        "case_url": OPS,
    }
    fields.update(overrides)
    return fields


# Realistic fields per generic milestone, and what the reader must see.
GENERIC_CASES: dict[Milestone, tuple[dict[str, Any], list[str]]] = {
    Milestone.CASE_UPDATE: (
        case_update_fields(),
        [
            "Your order has been approved",
            "Our credit team approved your order of 12 industrial freezers.",
            "Order approval",
            "Approved",
            "Confirm the delivery address in the portal",
            "11 June 2025",
        ],
    ),
    Milestone.PROPOSAL: (
        proposal_fields(),
        [
            "We offer a partial refund of GBP 310.00 for the two dented units.",
            "You keep the goods; no return shipment is needed.",
            "Return request",
            "7 June 2025",
            "Accept",
            "Reject",
        ],
    ),
    Milestone.TASK_REMINDER: (
        task_fields(fraction=0.5),
        [
            "Verify the customer's credit limit",
            "Credit review",
            "credit_analyst",
            "2025-06-02 18:00 UTC",
            "Half of the time allowed",
        ],
    ),
    Milestone.TASK_OVERDUE: (
        task_fields(due_at=NOW - timedelta(hours=3), escalated_to="operations_lead"),
        [
            "Verify the customer's credit limit",
            "Credit review",
            "credit_analyst",
            "2025-06-02 11:00 UTC",
            "operations_lead",
        ],
    ),
    Milestone.CASE_REOPENED: (
        {
            "case_ref": "ORD-2025-000042",
            "stage": "Credit review",
            "reason": "The customer raised the order value from 12 to 40 units.",
            "by": "Marta Nowak",
            "case_url": OPS,
        },
        [
            "Credit review",
            "The customer raised the order value from 12 to 40 units.",
            "Marta Nowak",
            "reopened",
        ],
    ),
    Milestone.WORK_ASSIGNED: (
        {
            "case_ref": "ORD-2025-000042",
            "person": "kofi",
            "team": "case_manager",
            "title": "Verify the customer's credit limit",
            "stage": "Credit review",
            "by": "maria",
            "to": "kofi",
            "previous": "omar",
            "reason": "Omar is on leave until Monday.",
            "case_url": OPS,
        },
        [
            "Verify the customer's credit limit is now yours",
            "Credit review",
            "maria moved it from omar",
            "Omar is on leave until Monday.",
        ],
    ),
    Milestone.CLIENT_REPLIED: (
        {
            "case_ref": "ORD-2025-000042",
            "stage": "Credit review",
            "excerpt": "Two of the freezers arrived dented; photos attached.",
            "channel": "email",
            "reopened": True,
            "case_url": OPS,
        },
        [
            "Two of the freezers arrived dented; photos attached.",
            "the case is open again",
            "Credit review",
            "email",
        ],
    ),
}


def esc(text: str) -> str:
    """HTML-escaped the way the templates escape it."""
    return str(escape(text))


def as_json(fields: dict[str, Any]) -> dict[str, Any]:
    """What an outbox row or a workflow hands over: plain JSON."""
    return cast(dict[str, Any], json.loads(json.dumps(fields, default=str)))


# --------------------------------------------------------------------------- registry


def test_generic_milestones_are_registered_everywhere() -> None:
    assert set(GENERIC_CASES) == set(GENERIC_MILESTONES)
    assert [m.value for m in GENERIC_MILESTONES] == [
        "case_update",
        "proposal",
        "task_reminder",
        "task_overdue",
        "case_reopened",
        "work_assigned",
        "client_replied",
    ]
    assert not set(GENERIC_MILESTONES) & set(CLIENT_MILESTONES)  # onboarding's six stay six
    assert CONTEXT_MODELS[Milestone.CASE_UPDATE] is CaseUpdateContext
    assert CONTEXT_MODELS[Milestone.PROPOSAL] is ProposalContext
    assert CONTEXT_MODELS[Milestone.TASK_REMINDER] is TaskReminderContext
    assert CONTEXT_MODELS[Milestone.TASK_OVERDUE] is TaskOverdueContext
    assert CONTEXT_MODELS[Milestone.CASE_REOPENED] is CaseReopenedContext
    assert CONTEXT_MODELS[Milestone.WORK_ASSIGNED] is WorkAssignedContext
    for milestone in (Milestone.CASE_UPDATE, Milestone.PROPOSAL):
        assert milestone in CLIENT_MESSAGES
        assert milestone.is_client_message and not milestone.is_staff_notice
    for milestone in (Milestone.TASK_REMINDER, Milestone.TASK_OVERDUE, Milestone.CASE_REOPENED):
        assert milestone in STAFF_NOTICES
        assert milestone.is_staff_notice and not milestone.is_client_message
    for milestone in GENERIC_MILESTONES:
        assert isinstance(sample_context(milestone), CONTEXT_MODELS[milestone])


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("milestone", list(GENERIC_MILESTONES), ids=str)
def test_renders_every_format_with_what_the_reader_needs(milestone: Milestone) -> None:
    fields, expected = GENERIC_CASES[milestone]
    msg = render(milestone, as_json(fields))

    ref = fields["case_ref"]
    for body in (msg.subject, msg.text, msg.html):
        assert ref in body
    assert "\n" not in msg.subject
    for value in expected:
        assert value in msg.text, value
        assert esc(value) in msg.html, value
    assert msg.html.lstrip().startswith("<!DOCTYPE html>")
    assert f"<title>{esc(msg.subject)}</title>" in msg.html

    if milestone.is_staff_notice:
        assert msg.sms is None
        assert "Do not forward to the client" in msg.text
        assert "Do not forward to the client" in msg.html
        assert OPS in msg.text and OPS in msg.html
    else:
        assert msg.sms is not None
        assert len(msg.sms) <= SMS_MAX_CHARS
        assert msg.sms.isascii()
        assert ref in msg.sms
        assert msg.sms.endswith(fields["portal_url"])
        assert f"Dear {fields['client_name']}," in msg.text
        assert fields["portal_url"] in msg.text and fields["portal_url"] in msg.html


def test_case_update_subject_sms_and_paragraphs() -> None:
    fields, _ = GENERIC_CASES[Milestone.CASE_UPDATE]
    msg = render(Milestone.CASE_UPDATE, fields)
    assert msg.subject == "Order approval ORD-2025-000042: Your order has been approved"
    assert msg.sms == (
        "Northbridge Onboarding: Order approval ORD-2025-000042: Your order has been approved."
        " Next: Confirm the delivery address in the portal. Details: " + PORTAL
    )
    # one <p> per paragraph; a line break inside a paragraph becomes <br>
    assert '<p style="margin:0 0 12px;">Our credit team approved your order' in msg.html
    assert "Dispatch is planned for next week;<br>we will send tracking details" in msg.html
    assert "Next steps" in msg.text


def test_case_update_without_next_steps_has_no_next_steps_section() -> None:
    fields = case_update_fields(next_steps=[], estimated_completion=None)
    msg = render(Milestone.CASE_UPDATE, fields)
    assert "Next steps" not in msg.text
    assert "Next steps" not in msg.html
    assert msg.sms is not None and "Next:" not in msg.sms
    assert "Estimated completion: to be confirmed" in msg.text


def test_proposal_asks_to_accept_or_reject_in_the_portal() -> None:
    fields, _ = GENERIC_CASES[Milestone.PROPOSAL]
    msg = render(Milestone.PROPOSAL, fields)
    link = fields["portal_url"]
    assert msg.subject == "Return request RET-2025-000007: please accept or reject our proposal"
    assert "Open your client portal with the link below and choose Accept or Reject" in msg.text
    assert f"Accept or reject in the portal: {link}" in msg.text
    assert f'<a href="{link}"' in msg.html
    assert "Accept or reject in the portal</a>" in msg.html
    assert "Please respond by: 7 June 2025" in msg.text
    assert msg.sms is not None
    assert "Our proposal: We offer a partial refund of GBP 310.00" in msg.sms
    assert f"accept or reject it in your client portal by 7 June 2025: {link}" in msg.sms
    # the proposal's two paragraphs stay two paragraphs
    assert msg.html.count('<p style="margin:12px 0;">') == 2


def test_proposal_without_link_or_deadline_says_sign_in_to_the_portal() -> None:
    fields = proposal_fields(portal_url=None, respond_by=None)
    msg = render(Milestone.PROPOSAL, fields)
    assert "Sign in to your client portal, open case RET-2025-000007" in msg.text
    assert "choose Accept or Reject." in msg.text
    assert "respond by" not in msg.text.lower()
    assert "http" not in (msg.sms or "")
    assert (msg.sms or "").endswith("accept or reject it in your client portal.")


def test_long_proposal_is_shortened_in_sms_but_keeps_ref_and_link() -> None:
    long = "We propose the following settlement. " * 60  # ~2,200 chars
    portal = "https://portal.example.com/p/" + "t" * 120
    msg = render(Milestone.PROPOSAL, proposal_fields(proposal=long, portal_url=portal))
    assert msg.sms is not None
    assert len(msg.sms) <= SMS_MAX_CHARS
    assert "RET-2025-000007" in msg.sms
    assert "..." in msg.sms
    assert msg.sms.endswith(portal)
    assert long.strip() in msg.text  # the email keeps it whole


def test_longest_case_update_sms_still_fits_without_a_link() -> None:
    """Worst case: brand, title, ref and heading at their limits, no steps, no link."""
    fields = case_update_fields(
        case_ref="R" * 40,
        case_title="T" * 80,
        heading="H" * 120,
        next_steps=[],
        portal_url=None,
    )
    msg = render(Milestone.CASE_UPDATE, fields)
    assert msg.sms is not None and len(msg.sms) <= SMS_MAX_CHARS


@pytest.mark.parametrize(
    ("fraction", "words"),
    [
        (0.5, "Half of the time allowed"),
        (0.25, "A quarter of the time allowed"),
        (0.75, "Three quarters of the time allowed"),
        (2 / 3, "Two thirds of the time allowed"),
        (0.8, "80% of the time allowed"),
        (0.9, "90% of the time allowed"),
    ],
)
def test_task_reminder_says_how_much_time_has_passed(fraction: float, words: str) -> None:
    msg = render(Milestone.TASK_REMINDER, task_fields(fraction=fraction))
    assert f"{words} for this task has passed" in msg.text
    assert words in msg.html
    assert msg.subject == (
        "[Task reminder] ORD-2025-000042 Verify the customer's credit limit: "
        "due 2025-06-02 18:00 UTC"
    )


def test_task_overdue_with_and_without_escalation() -> None:
    escalated = render(
        Milestone.TASK_OVERDUE, task_fields(due_at=NOW, escalated_to="operations_lead")
    )
    assert escalated.subject.endswith("was due 2025-06-02 14:00 UTC, escalated to operations_lead")
    assert "It has been escalated to operations_lead." in escalated.text

    alone = render(Milestone.TASK_OVERDUE, task_fields(due_at=NOW, escalated_to=None))
    assert alone.subject.endswith("was due 2025-06-02 14:00 UTC")
    assert "escalated to" not in alone.subject
    assert "Escalated to:  not escalated" in alone.text
    assert "not escalated" in alone.html


def test_case_reopened_shows_stage_reason_and_who() -> None:
    fields, _ = GENERIC_CASES[Milestone.CASE_REOPENED]
    msg = render(Milestone.CASE_REOPENED, fields)
    assert msg.subject == "[Case reopened] ORD-2025-000042: back to Credit review"
    assert "Marta Nowak reopened this case." in msg.text


def test_due_times_are_shown_in_utc_whatever_zone_they_come_in() -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2025, 6, 2, 20, 0, tzinfo=ZoneInfo("Asia/Singapore"))  # 12:00 UTC
    msg = render(Milestone.TASK_REMINDER, task_fields(due_at=local, fraction=0.5))
    assert "2025-06-02 12:00 UTC" in msg.subject
    assert "2025-06-02 12:00 UTC" in msg.text


# --------------------------------------------------------------------------- escaping


def test_html_escapes_client_supplied_script_in_lines_heading_and_proposal() -> None:
    update = render(
        Milestone.CASE_UPDATE,
        case_update_fields(lines=[f"Comment from the buyer: {EVIL}"], heading=f"Note {EVIL}"),
    )
    proposal = render(Milestone.PROPOSAL, proposal_fields(proposal=f"{EVIL}\n\n<b>bold</b>"))
    for msg in (update, proposal):
        assert "<script>" not in msg.html
        assert EVIL_ESCAPED in msg.html
        assert EVIL in msg.text  # plain text is not HTML: no entities there
    assert "<b>bold</b>" not in proposal.html
    assert "&lt;b&gt;bold&lt;/b&gt;" in proposal.html
    # the subject carries the heading as text; the <title> escapes it
    assert EVIL in update.subject
    assert f"<title>{esc(update.subject)}</title>" in update.html


def test_html_escapes_script_in_staff_notices() -> None:
    reopened = render(
        Milestone.CASE_REOPENED,
        {**GENERIC_CASES[Milestone.CASE_REOPENED][0], "reason": EVIL, "by": "<i>x</i>"},
    )
    task = render(Milestone.TASK_OVERDUE, task_fields(task_title=EVIL, escalated_to=None))
    for msg in (reopened, task):
        assert "<script>" not in msg.html
        assert EVIL_ESCAPED in msg.html
    assert "<i>x</i>" not in reopened.html


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("milestone", "mutate"),
    [
        # case_update
        (Milestone.CASE_UPDATE, lambda f: f.pop("heading")),
        (Milestone.CASE_UPDATE, lambda f: f.pop("case_title")),
        (Milestone.CASE_UPDATE, lambda f: f.pop("lines")),
        (Milestone.CASE_UPDATE, lambda f: f.pop("next_steps")),
        (Milestone.CASE_UPDATE, lambda f: f.pop("estimated_completion")),
        (Milestone.CASE_UPDATE, lambda f: f.update(lines="one paragraph, not a list")),
        (Milestone.CASE_UPDATE, lambda f: f.update(lines=[])),
        (Milestone.CASE_UPDATE, lambda f: f.update(lines=["x" * 2001])),
        (Milestone.CASE_UPDATE, lambda f: f.update(lines=[42])),
        (Milestone.CASE_UPDATE, lambda f: f.update(heading="two\nlines")),
        (Milestone.CASE_UPDATE, lambda f: f.update(heading="x" * 121)),
        (Milestone.CASE_UPDATE, lambda f: f.update(case_title="")),
        (Milestone.CASE_UPDATE, lambda f: f.update(next_steps=["step"] * 11)),
        (Milestone.CASE_UPDATE, lambda f: f.update(estimated_completion="2025-07-01T00:00:00")),
        (Milestone.CASE_UPDATE, lambda f: f.update(portal_url="not a url")),
        (Milestone.CASE_UPDATE, lambda f: f.update(unexpected="x")),
        # proposal
        (Milestone.PROPOSAL, lambda f: f.pop("proposal")),
        (Milestone.PROPOSAL, lambda f: f.pop("respond_by")),
        (Milestone.PROPOSAL, lambda f: f.pop("client_name")),
        (Milestone.PROPOSAL, lambda f: f.update(proposal="   ")),
        (Milestone.PROPOSAL, lambda f: f.update(proposal=["a", "b"])),
        (Milestone.PROPOSAL, lambda f: f.update(respond_by="next week")),
        (Milestone.PROPOSAL, lambda f: f.update(portal_url="https://x.example/" + "a" * 200)),
        (Milestone.PROPOSAL, lambda f: f.update(status="Waiting for you")),
        # task_reminder
        (Milestone.TASK_REMINDER, lambda f: f.pop("due_at")),
        (Milestone.TASK_REMINDER, lambda f: f.pop("fraction")),
        (Milestone.TASK_REMINDER, lambda f: f.pop("assignee_role")),
        (Milestone.TASK_REMINDER, lambda f: f.update(fraction="half")),
        (Milestone.TASK_REMINDER, lambda f: f.update(fraction=0)),
        (Milestone.TASK_REMINDER, lambda f: f.update(fraction=1.0)),
        (Milestone.TASK_REMINDER, lambda f: f.update(fraction=1.5)),
        (Milestone.TASK_REMINDER, lambda f: f.update(due_at="2025-06-02T18:00:00")),
        (Milestone.TASK_REMINDER, lambda f: f.update(client_name="Not for staff notices")),
        # task_overdue
        (Milestone.TASK_OVERDUE, lambda f: f.pop("escalated_to")),
        (Milestone.TASK_OVERDUE, lambda f: f.pop("task_title")),
        (Milestone.TASK_OVERDUE, lambda f: f.update(escalated_to=["a", "b"])),
        (Milestone.TASK_OVERDUE, lambda f: f.update(stage=None)),
        # case_reopened
        (Milestone.CASE_REOPENED, lambda f: f.pop("reason")),
        (Milestone.CASE_REOPENED, lambda f: f.pop("by")),
        (Milestone.CASE_REOPENED, lambda f: f.update(reason="")),
        (Milestone.CASE_REOPENED, lambda f: f.update(case_ref="")),
        (Milestone.CASE_REOPENED, lambda f: f.update(stage=7)),
    ],
)
def test_missing_or_wrong_fields_are_rejected(milestone: Milestone, mutate: Any) -> None:
    fields = as_json(GENERIC_CASES[milestone][0])
    mutate(fields)
    with pytest.raises(ValidationError):
        render(milestone, fields)


def test_context_model_of_another_milestone_is_rejected() -> None:
    with pytest.raises(TypeError, match="TaskOverdueContext"):
        render(Milestone.TASK_OVERDUE, sample_context(Milestone.TASK_REMINDER))
    with pytest.raises(TypeError, match="ProposalContext"):
        render(Milestone.PROPOSAL, sample_context(Milestone.CASE_UPDATE))


def test_models_validate_on_construction() -> None:
    with pytest.raises(ValidationError):
        TaskReminderContext(**task_fields())  # no fraction
    with pytest.raises(ValidationError):
        ProposalContext(**proposal_fields(respond_by=datetime(2025, 6, 9)))  # naive


def test_contexts_survive_a_json_round_trip() -> None:
    for milestone, (fields, _) in GENERIC_CASES.items():
        ctx = CONTEXT_MODELS[milestone].model_validate(fields)
        assert render(milestone, json.loads(ctx.model_dump_json())) == render(milestone, ctx)


# --------------------------------------------------------------------------- preview CLI


def test_preview_lists_and_renders_the_generic_milestones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="onboarding")
    preview.add_parser(parser.add_subparsers(dest="command", required=True))
    assert preview.run(parser.parse_args(["notify-preview", "proposal", "--format", "sms"])) == 0
    assert "accept or reject" in capsys.readouterr().out
    assert preview.run(parser.parse_args(["notify-preview", "task_overdue"])) == 0
    assert capsys.readouterr().out.startswith("Subject: [Task overdue] ONB-2025-000123")


@pytest.mark.parametrize("milestone", ["task_reminder", "task_overdue", "case_reopened"])
def test_preview_refuses_sms_for_staff_notices(
    milestone: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="onboarding")
    preview.add_parser(parser.add_subparsers(dest="command", required=True))
    assert preview.run(parser.parse_args(["notify-preview", milestone, "--format", "sms"])) == 2
    assert "staff notice" in capsys.readouterr().err


# --------------------------------------------------------------------------- notify activity
# Only the parts before any database write: addressing, portal link, rendering.


def activities(**kwargs: Any) -> NotificationActivities:
    return NotificationActivities(cast(Any, None), email=None, sms=None, **kwargs)


def staff_input(milestone: Milestone, role: str) -> NotifyInput:
    return NotifyInput(
        case_ref="ORD-2025-000042",
        milestone=milestone.value,
        context=as_json(GENERIC_CASES[milestone][0]),
        recipient=Recipient(name=role),
        channels=[],
        audience="staff",
    )


@pytest.mark.parametrize(
    "milestone", [Milestone.TASK_REMINDER, Milestone.TASK_OVERDUE, Milestone.CASE_REOPENED]
)
def test_staff_notices_are_addressed_by_role_from_the_directory(milestone: Milestone) -> None:
    acts = activities(staff_directory={"credit_analyst": "credit@bank.example"})
    inp = acts._address_staff(staff_input(milestone, "credit_analyst"))
    assert inp.recipient.email == "credit@bank.example"
    got, rendered = acts._render(inp)
    assert got is milestone
    assert rendered.sms is None


def test_unknown_staff_role_fails_the_notice_not_the_worker() -> None:
    """As for the SLA notices: a non-retryable InvalidNotification the workflow records."""
    acts = activities(staff_directory={"operations": "ops@bank.example"})
    with pytest.raises(ApplicationError) as err:
        acts._address_staff(staff_input(Milestone.TASK_OVERDUE, "returns_desk"))
    assert err.value.type == "InvalidNotification"
    assert err.value.non_retryable
    assert "returns_desk" in str(err.value)


def test_staff_notice_is_never_sent_to_a_client() -> None:
    inp = staff_input(Milestone.TASK_REMINDER, "credit_analyst").model_copy(
        update={"audience": "client"}
    )
    with pytest.raises(ApplicationError) as err:
        activities()._render(inp)
    assert err.value.type == "InvalidNotification"


def test_bad_generic_context_is_an_invalid_template_context() -> None:
    inp = staff_input(Milestone.TASK_REMINDER, "credit_analyst")
    inp = inp.model_copy(update={"context": {**inp.context, "fraction": "half"}})
    with pytest.raises(ApplicationError) as err:
        activities()._render(inp)
    assert err.value.type == "InvalidTemplateContext"
    assert err.value.non_retryable


def test_activity_adds_the_portal_link_to_a_proposal() -> None:
    link = "https://portal.example.com/p/eyJhbGciOi.token"
    acts = activities(portal_link=lambda ref: f"{link}?case={ref}")
    context = as_json(proposal_fields())
    context.pop("portal_url")
    inp = NotifyInput(
        case_ref="RET-2025-000007",
        milestone="proposal",
        context=context,
        recipient=Recipient(name="Ada Lovelace", email="ada@example.com", phone="+447700900123"),
        channels=[Channel.EMAIL, Channel.SMS, Channel.IN_APP],
    )
    _, rendered = ActivityEnvironment().run(acts._render_linked, inp)
    minted = f"{link}?case=RET-2025-000007"
    assert f"Accept or reject in the portal: {minted}" in rendered.text
    assert esc(minted) in rendered.html
    assert rendered.sms is not None and rendered.sms.endswith(minted)
