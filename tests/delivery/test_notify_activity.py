"""The notify activity against the SendGrid/Twilio stand-ins and real Postgres.

What the stand-ins received and what the outbox holds are both asserted: exactly once,
retries, a worker dying mid-send, fallback, routing by preference and urgency, local outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notifications import (
    NotificationActivities,
    build_senders,
    outbox_key,
    route_channels,
)
from integrations.sendgrid_email import SendGridEmailSender
from integrations.twilio_sms import TwilioSmsSender
from notifications import Milestone, render, sample_context
from notifications.variants import pick
from schemas.enums import Channel
from schemas.notifications import CallbackRequest, Recipient
from store.models import CallbackTaskRow, NotificationRow
from tests.conftest import test_settings as make_settings
from tests.delivery.conftest import (
    CLIENT_EMAIL,
    CLIENT_PHONE,
    FROM_EMAIL,
    FROM_NAME,
    FROM_NUMBER,
    SG_KEY,
    TW_SID,
    TW_TOKEN,
    context,
    notify_input,
    outbox,
)
from tests.standins.sendgrid_standin import SendGridStandin
from tests.standins.twilio_standin import TwilioStandin
from tests.waiting import until

SMS_FIRST = [Channel.SMS, Channel.EMAIL, Channel.IN_APP]


async def run(acts: NotificationActivities, inp):
    return await ActivityEnvironment().run(acts.notify, inp)


# ------------------------------------------------------------------ exactly once
async def test_one_email_per_milestone_even_when_run_twice(
    acts, sendgrid: SendGridStandin, twilio: TwilioStandin, sessions, case_ref
):
    inp = notify_input(case_ref, Milestone.CASE_CREATED)
    first = await run(acts, inp)
    second = await run(acts, inp)

    assert len(sendgrid.requests) == 1
    assert len(sendgrid.accepted) == 1
    assert twilio.requests == []
    req = sendgrid.last
    # the case's A/B variant: deterministic per case and milestone
    variant = pick(Milestone.CASE_CREATED.value, case_ref)
    expected = render(Milestone.CASE_CREATED, context(case_ref), variant=variant)
    assert expected.variant == variant
    assert req.header("Authorization") == f"Bearer {SG_KEY}"
    body = req.json
    assert body["personalizations"] == [{"to": [{"email": CLIENT_EMAIL, "name": "Ada Lovelace"}]}]
    assert body["from"] == {"email": FROM_EMAIL, "name": FROM_NAME}
    assert body["subject"] == expected.subject
    assert body["content"] == [
        {"type": "text/plain", "value": expected.text},
        {"type": "text/html", "value": expected.html},
    ]
    key = f"{case_ref}:case_created:1:email"
    assert body["custom_args"]["idempotency_key"] == key
    assert body["custom_args"]["case_ref"] == case_ref
    assert body["custom_args"]["milestone"] == "case_created"

    message_id = sendgrid.accepted[0].message_id
    assert [(r.channel, r.status) for r in first.results] == [
        (Channel.IN_APP, "recorded"),
        (Channel.EMAIL, "sent"),
    ]
    assert first.results[1].provider_message_id == message_id
    assert second.results[1].status == "sent"
    assert second.results[1].provider_message_id == message_id

    rows = await outbox(sessions, case_ref)
    assert set(rows) == {"email", "in_app"}
    email = rows["email"]
    assert email.outbox_key == key
    assert email.status == "sent"
    assert email.provider == "sendgrid"
    assert email.provider_message_id == message_id
    assert email.recipient == CLIENT_EMAIL
    assert email.subject == expected.subject
    assert email.body_text == expected.text
    assert email.body_html == expected.html
    assert email.attempts == 1
    assert email.sent_at is not None
    in_app = rows["in_app"]
    assert (in_app.status, in_app.provider, in_app.read_at) == ("sent", "in_app", None)
    assert in_app.subject == expected.subject


async def test_each_milestone_and_occurrence_is_its_own_message(
    acts, sendgrid: SendGridStandin, sessions, case_ref
):
    await run(acts, notify_input(case_ref, Milestone.CASE_CREATED))
    await run(acts, notify_input(case_ref, Milestone.DOCUMENTS_NEEDED))
    await run(acts, notify_input(case_ref, Milestone.DOCUMENTS_NEEDED))
    await run(acts, notify_input(case_ref, Milestone.DOCUMENTS_NEEDED, occurrence=2))

    assert len(sendgrid.accepted) == 3
    keys = [a.body["custom_args"]["idempotency_key"] for a in sendgrid.accepted]
    assert keys == [
        f"{case_ref}:case_created:1:email",
        f"{case_ref}:documents_needed:1:email",
        f"{case_ref}:documents_needed:2:email",
    ]


async def test_retry_after_provider_500_sends_once(
    acts, sendgrid: SendGridStandin, sessions, case_ref
):
    sendgrid.fail_next(1, status=500)
    inp = notify_input(case_ref, Milestone.COMPLIANCE_APPROVED)

    with pytest.raises(ApplicationError) as err:
        await run(acts, inp)
    assert err.value.type == "RetryableDeliveryError"
    assert not err.value.non_retryable
    failed = (await outbox(sessions, case_ref))["email"]
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert "500" in (failed.error or "")

    result = await run(acts, inp)  # Temporal's retry
    assert result.results[-1].status == "sent"
    assert len(sendgrid.requests) == 2
    assert len(sendgrid.accepted) == 1
    row = (await outbox(sessions, case_ref))["email"]
    assert (row.status, row.attempts, row.error) == ("sent", 2, None)
    assert row.provider_message_id == sendgrid.accepted[0].message_id

    await run(acts, inp)  # and a later replay sends nothing
    assert len(sendgrid.requests) == 2


async def _in_doubt_row(sessions, inp, channel: Channel, *, body: str, age: timedelta) -> None:
    """The row an attempt leaves when it dies between the hand-over and the answer."""
    began = datetime.now(UTC) - age
    async with sessions.begin() as s:
        s.add(
            NotificationRow(
                outbox_key=outbox_key(inp, channel),
                case_ref=inp.case_ref,
                milestone=inp.milestone,
                channel=channel.value,
                recipient=CLIENT_PHONE if channel == Channel.SMS else CLIENT_EMAIL,
                subject=None if channel == Channel.SMS else "Your onboarding",
                body_text=body,
                body_html=None if channel == Channel.SMS else f"<p>{body}</p>",
                status="sending",
                provider="twilio" if channel == Channel.SMS else "sendgrid",
                attempts=1,
                created_at=began,
                sent_at=began,
            )
        )


async def test_worker_dying_mid_send_is_reconciled_not_sent_twice(
    acts, sendgrid: SendGridStandin, sessions, case_ref
):
    """The provider got the request, the attempt died before recording the answer: the
    retry asks SendGrid's activity log, finds the message and records it as sent."""
    sendgrid.stall_next(1, seconds=0.5)
    inp = notify_input(case_ref, Milestone.SETUP_COMPLETED)
    env = ActivityEnvironment()
    first = asyncio.ensure_future(env.run(acts.notify, inp))
    await until(lambda: bool(sendgrid.requests), what="the send to reach the provider")
    assert (await outbox(sessions, case_ref))["email"].status == "sending"
    env.cancel()  # the worker goes away mid-request
    with contextlib.suppress(asyncio.CancelledError):
        await first
    assert first.cancelled()
    await until(lambda: bool(sendgrid.accepted), what="the stalled send to be accepted")

    result = await run(acts, inp)  # the retry on another worker

    posts = [r for r in sendgrid.requests if r.method == "POST"]
    lookups = [r for r in sendgrid.requests if r.method == "GET"]
    assert len(posts) == 1, "a second send reached the provider"
    assert len(lookups) == 1 and lookups[0].path == "/v3/messages"
    key = f"{case_ref}:setup_completed:1:email"
    assert lookups[0].query["query"] == [
        f'unique_args[\'idempotency_key\']="{key}" AND to_email="{CLIENT_EMAIL}"'
    ]
    assert (result.results[-1].channel, result.results[-1].status) == (Channel.EMAIL, "sent")
    row = (await outbox(sessions, case_ref))["email"]
    assert (row.status, row.attempts, row.error) == ("sent", 1, None)
    assert row.provider_message_id.startswith(sendgrid.accepted[0].message_id)

    await run(acts, inp)  # settled: nothing more goes out, nothing more is asked
    assert len(sendgrid.requests) == 2


async def test_timeout_after_the_provider_took_it_is_not_resent(
    sendgrid: SendGridStandin, sessions, case_ref
):
    """The client gives up waiting; SendGrid accepts the mail anyway (the past duplicate)."""
    sender = SendGridEmailSender(
        SG_KEY,
        FROM_EMAIL,
        FROM_NAME,
        host=sendgrid.base_url,
        timeout=0.3,
        reconcile_after_seconds=30,
    )
    acts = NotificationActivities(sessions, email=sender, sms=None)
    sendgrid.stall_next(1, seconds=0.8)
    inp = notify_input(case_ref, Milestone.DOCUMENTS_NEEDED)

    with pytest.raises(ApplicationError) as err:
        await run(acts, inp)
    assert err.value.type == "DeliveryInDoubt" and not err.value.non_retryable
    assert err.value.next_retry_delay == timedelta(seconds=30)
    row = (await outbox(sessions, case_ref))["email"]
    assert row.status == "checking" and "TimeoutError" in (row.error or "")
    await until(lambda: bool(sendgrid.accepted), what="the provider to accept the stalled send")

    result = await run(acts, inp)

    assert result.results[-1].status == "sent"
    assert len(sendgrid.accepted) == 1
    assert [r.method for r in sendgrid.requests] == ["POST", "GET"]
    assert (await outbox(sessions, case_ref))["email"].status == "sent"


async def test_in_doubt_message_the_provider_never_got_is_sent_once_the_lag_has_passed(
    sendgrid: SendGridStandin, sessions, case_ref
):
    sender = SendGridEmailSender(
        SG_KEY, FROM_EMAIL, FROM_NAME, host=sendgrid.base_url, reconcile_after_seconds=60
    )
    acts = NotificationActivities(sessions, email=sender, sms=None)
    inp = notify_input(case_ref, Milestone.DOCUMENTS_NEEDED)
    await _in_doubt_row(sessions, inp, Channel.EMAIL, body="Please upload", age=timedelta(0))

    with pytest.raises(ApplicationError) as err:  # too soon to trust "not listed"
        await run(acts, inp)
    assert err.value.type == "DeliveryInDoubt"
    delay = err.value.next_retry_delay
    assert delay is not None and timedelta(seconds=50) < delay <= timedelta(seconds=60)
    assert [r.method for r in sendgrid.requests] == ["GET"]
    assert (await outbox(sessions, case_ref))["email"].status == "checking"

    async with sessions.begin() as s:  # a minute later, by the row's clock
        row = (
            await s.execute(
                select(NotificationRow).where(
                    NotificationRow.case_ref == case_ref, NotificationRow.channel == "email"
                )
            )
        ).scalar_one()
        row.sent_at = row.created_at = datetime.now(UTC) - timedelta(seconds=61)
    result = await run(acts, inp)

    assert result.results[-1].status == "sent"
    assert [r.method for r in sendgrid.requests] == ["GET", "GET", "POST"]
    sent = sendgrid.accepted[0].body
    assert sent["content"][0] == {"type": "text/plain", "value": "Please upload"}, (
        "the resend carries the stored copy, not a re-render"
    )
    row = (await outbox(sessions, case_ref))["email"]
    assert (row.status, row.attempts) == ("sent", 2)


async def test_in_doubt_without_an_activity_api_is_left_to_staff(
    acts, sendgrid: SendGridStandin, sessions, case_ref
):
    sendgrid.activity_api = False  # the account has no Email Activity add-on
    inp = notify_input(case_ref, Milestone.DOCUMENTS_NEEDED)
    await _in_doubt_row(sessions, inp, Channel.EMAIL, body="Please", age=timedelta(hours=1))

    result = await run(acts, inp)

    assert [r.method for r in sendgrid.requests] == ["GET"]
    assert sendgrid.accepted == []
    assert result.results[-1].status == "unconfirmed"
    row = (await outbox(sessions, case_ref))["email"]
    assert row.status == "unconfirmed"
    assert "may or may not have been delivered" in (row.error or "")
    assert "Email Activity add-on" in (row.error or "")
    await run(acts, inp)
    assert len(sendgrid.requests) == 1


async def test_sms_timeout_is_reconciled_by_body(twilio: TwilioStandin, sessions, case_ref):
    sender = TwilioSmsSender(
        TW_SID,
        TW_TOKEN,
        FROM_NUMBER,
        base_url=twilio.base_url,
        timeout=0.3,
        reconcile_after_seconds=30,
    )
    acts = NotificationActivities(sessions, email=None, sms=sender)
    twilio.stall_next(1, seconds=0.8)
    inp = notify_input(case_ref, channels=SMS_FIRST, urgent=True)

    with pytest.raises(ApplicationError) as err:
        await run(acts, inp)
    assert err.value.type == "DeliveryInDoubt"
    assert (await outbox(sessions, case_ref))["sms"].status == "checking"
    await until(lambda: bool(twilio.messages), what="Twilio to create the stalled message")

    result = await run(acts, inp)

    assert [(r.channel, r.status) for r in result.results][-1] == (Channel.SMS, "sent")
    assert len(twilio.messages) == 1
    assert [r.method for r in twilio.requests] == ["POST", "GET"]
    assert twilio.requests[1].query["To"] == [CLIENT_PHONE]
    row = (await outbox(sessions, case_ref))["sms"]
    assert (row.status, row.provider_message_id) == ("sent", twilio.messages[0]["sid"])


async def test_sms_row_left_sending_by_a_dead_worker_is_resent_when_twilio_lacks_it(
    sessions, twilio: TwilioStandin, sendgrid: SendGridStandin, case_ref
):
    sender = TwilioSmsSender(TW_SID, TW_TOKEN, FROM_NUMBER, base_url=twilio.base_url)
    acts = NotificationActivities(sessions, email=None, sms=sender)
    inp = notify_input(case_ref, channels=SMS_FIRST, urgent=True)
    await _in_doubt_row(sessions, inp, Channel.SMS, body="Case update", age=timedelta(minutes=5))

    result = await run(acts, inp)

    assert [r.method for r in twilio.requests] == ["GET", "POST"]
    assert [m["body"] for m in twilio.messages] == ["Case update"]
    assert sendgrid.requests == []  # no fallback to email either
    assert result.results[-1].status == "sent"
    row = (await outbox(sessions, case_ref))["sms"]
    assert (row.status, row.attempts) == ("sent", 2)


# ------------------------------------------------------------------ fallback
async def test_permanent_email_failure_falls_back_to_sms(
    acts, sendgrid: SendGridStandin, twilio: TwilioStandin, sessions, case_ref
):
    sendgrid.fail_next(1, status=400, message="Does not contain a valid address.")
    inp = notify_input(case_ref, Milestone.DOCUMENTS_NEEDED, channels=SMS_FIRST)

    result = await run(acts, inp)

    assert [(r.channel, r.status) for r in result.results] == [
        (Channel.IN_APP, "recorded"),
        (Channel.EMAIL, "fallback"),
        (Channel.SMS, "sent"),
    ]
    assert len(sendgrid.requests) == 1 and sendgrid.accepted == []
    assert len(twilio.messages) == 1
    req = twilio.last
    assert req.basic_auth == (TW_SID, TW_TOKEN)
    assert req.path == f"/2010-04-01/Accounts/{TW_SID}/Messages.json"
    expected = render(
        Milestone.DOCUMENTS_NEEDED,
        context(case_ref, Milestone.DOCUMENTS_NEEDED),
        variant=pick(Milestone.DOCUMENTS_NEEDED.value, case_ref),
    )
    assert req.form == {"To": CLIENT_PHONE, "From": FROM_NUMBER, "Body": expected.sms}

    rows = await outbox(sessions, case_ref)
    assert rows["email"].status == "fallback"
    assert "valid address" in (rows["email"].error or "")
    assert rows["email"].sent_at is None
    sms = rows["sms"]
    assert (sms.status, sms.provider, sms.recipient) == ("sent", "twilio", CLIENT_PHONE)
    assert sms.provider_message_id == twilio.messages[0]["sid"]
    assert sms.body_text == expected.sms

    await run(acts, inp)  # a replay: the fallback is remembered, nothing is re-sent
    assert len(sendgrid.requests) == 1 and len(twilio.requests) == 1


async def test_permanent_failure_without_a_fallback_is_rejected(
    acts, sendgrid: SendGridStandin, sessions, case_ref
):
    sendgrid.fail_next(1, status=400)
    result = await run(acts, notify_input(case_ref, phone=None, channels=SMS_FIRST))
    assert [(r.channel, r.status) for r in result.results] == [
        (Channel.IN_APP, "recorded"),
        (Channel.SMS, "skipped"),
        (Channel.EMAIL, "rejected"),
    ]
    assert (await outbox(sessions, case_ref))["email"].status == "rejected"


async def test_fallback_then_retryable_sms_failure_resumes_at_sms(
    acts, sendgrid: SendGridStandin, twilio: TwilioStandin, sessions, case_ref
):
    sendgrid.fail_next(1, status=400)
    twilio.fail_next(1, status=503)
    inp = notify_input(case_ref, channels=SMS_FIRST)
    with pytest.raises(ApplicationError):
        await run(acts, inp)
    result = await run(acts, inp)
    assert result.results[-1].status == "sent"
    assert len(sendgrid.requests) == 1 and len(twilio.requests) == 2
    assert len(twilio.messages) == 1
    rows = await outbox(sessions, case_ref)
    assert (rows["email"].status, rows["sms"].status, rows["sms"].attempts) == (
        "fallback",
        "sent",
        2,
    )


# ------------------------------------------------------------------ routing
def test_route_channels_orders_by_urgency() -> None:
    assert route_channels(SMS_FIRST, urgent=False) == [Channel.EMAIL, Channel.SMS]
    assert route_channels([Channel.EMAIL, Channel.SMS], urgent=True) == [Channel.SMS, Channel.EMAIL]
    assert route_channels([Channel.IN_APP], urgent=True) == []
    assert route_channels([Channel.SMS, Channel.IN_APP], urgent=False) == [Channel.SMS]


async def test_non_urgent_goes_by_email_first(
    acts, sendgrid: SendGridStandin, twilio: TwilioStandin, sessions, case_ref
):
    await run(acts, notify_input(case_ref, channels=[Channel.SMS, Channel.EMAIL]))
    assert len(sendgrid.accepted) == 1 and twilio.requests == []
    assert set(await outbox(sessions, case_ref)) == {"in_app", "email"}


async def test_urgent_goes_by_sms_first(
    acts, sendgrid: SendGridStandin, twilio: TwilioStandin, sessions, case_ref
):
    result = await run(
        acts, notify_input(case_ref, channels=[Channel.EMAIL, Channel.SMS], urgent=True)
    )
    assert len(twilio.messages) == 1 and sendgrid.requests == []
    assert result.results[-1].channel == Channel.SMS
    assert set(await outbox(sessions, case_ref)) == {"in_app", "sms"}


async def test_in_app_only_client_gets_only_an_in_app_row(
    acts, sendgrid: SendGridStandin, twilio: TwilioStandin, sessions, case_ref
):
    result = await run(acts, notify_input(case_ref, channels=[Channel.IN_APP], urgent=True))
    assert [(r.channel, r.status) for r in result.results] == [(Channel.IN_APP, "recorded")]
    assert sendgrid.requests == [] and twilio.requests == []
    rows = await outbox(sessions, case_ref)
    assert set(rows) == {"in_app"}
    assert rows["in_app"].status == "sent"


async def test_missing_phone_skips_to_email(
    acts, sendgrid: SendGridStandin, twilio: TwilioStandin, sessions, case_ref
):
    result = await run(
        acts, notify_input(case_ref, channels=[Channel.SMS, Channel.EMAIL], urgent=True, phone=None)
    )
    assert [(r.channel, r.status) for r in result.results] == [
        (Channel.IN_APP, "recorded"),
        (Channel.SMS, "skipped"),
        (Channel.EMAIL, "sent"),
    ]
    assert result.results[1].detail == "no phone number"
    assert twilio.requests == [] and len(sendgrid.accepted) == 1
    assert set(await outbox(sessions, case_ref)) == {"in_app", "email"}


# ------------------------------------------------------------------ local outbox
async def test_local_outbox_without_providers(
    sessions, case_ref, sendgrid: SendGridStandin, twilio: TwilioStandin, caplog
):
    acts = NotificationActivities(sessions, email=None, sms=None)
    with caplog.at_level("WARNING"):
        first = await run(acts, notify_input(case_ref, channels=SMS_FIRST))
        urgent = await run(
            acts,
            notify_input(case_ref, Milestone.DOCUMENTS_NEEDED, channels=SMS_FIRST, urgent=True),
        )
    assert first.results[-1].status == "local_outbox"
    assert urgent.results[-1].status == "local_outbox"
    assert sendgrid.requests == [] and twilio.requests == []
    email = (await outbox(sessions, case_ref, Milestone.CASE_CREATED))["email"]
    assert (email.status, email.provider, email.sent_at) == ("local_outbox", "local", None)
    assert "not delivered externally" in (email.error or "")
    assert email.body_html and email.subject
    sms = (await outbox(sessions, case_ref, Milestone.DOCUMENTS_NEEDED))["sms"]
    assert (sms.status, sms.provider) == ("local_outbox", "local")
    assert any("not delivered externally" in r.getMessage() for r in caplog.records)


def test_build_senders_from_settings() -> None:
    assert build_senders(make_settings()) == (None, None)
    email, sms = build_senders(
        make_settings(
            sendgrid_api_key=SG_KEY,
            sendgrid_host="http://127.0.0.1:9",
            twilio_account_sid=TW_SID,
            twilio_auth_token=TW_TOKEN,
            twilio_from_number=FROM_NUMBER,
            twilio_base_url="http://127.0.0.1:9",
        )
    )
    assert isinstance(email, SendGridEmailSender) and email.host == "http://127.0.0.1:9"
    assert isinstance(sms, TwilioSmsSender) and sms.base_url == "http://127.0.0.1:9"
    _, no_sms = build_senders(make_settings(twilio_account_sid=TW_SID))  # token/from missing
    assert no_sms is None


# ------------------------------------------------------------------ staff
async def test_staff_notice_goes_by_email_only(
    acts, sendgrid: SendGridStandin, twilio: TwilioStandin, sessions, case_ref
):
    ctx = sample_context(Milestone.SLA_BREACHED).model_dump(mode="json")
    ctx["case_ref"] = case_ref
    inp = notify_input(
        case_ref,
        Milestone.SLA_BREACHED,
        audience="staff",
        recipient=Recipient(name="Onboarding lead", email="lead@bank.example", phone="+15550001"),
        channels=[Channel.SMS, Channel.IN_APP],
        urgent=True,
        context=ctx,
    )
    result = await run(acts, inp)
    await run(acts, inp)
    assert [(r.channel, r.status) for r in result.results] == [(Channel.EMAIL, "sent")]
    assert twilio.requests == [] and len(sendgrid.accepted) == 1
    assert sendgrid.last.json["personalizations"][0]["to"][0]["email"] == "lead@bank.example"
    rows = await outbox(sessions, case_ref)
    assert set(rows) == {"email"}
    assert rows["email"].audience == "staff"
    # the same notice to another role is another message
    other = inp.model_copy(update={"recipient": Recipient(name="Ops", email="ops@bank.example")})
    await run(acts, other)
    assert len(sendgrid.accepted) == 2


# ------------------------------------------------------------------ bad input
async def test_invalid_context_fails_without_rows(
    acts, sendgrid: SendGridStandin, sessions, case_ref
):
    ctx = context(case_ref)
    del ctx["required_documents"]
    with pytest.raises(ApplicationError) as err:
        await run(acts, notify_input(case_ref, context=ctx))
    assert err.value.type == "InvalidTemplateContext"
    assert err.value.non_retryable
    assert "required_documents" in err.value.message
    assert sendgrid.requests == []
    assert await outbox(sessions, case_ref) == {}


async def test_staff_notice_to_a_client_is_refused(acts, sessions, case_ref):
    ctx = sample_context(Milestone.SLA_WARNING).model_dump(mode="json")
    ctx["case_ref"] = case_ref
    with pytest.raises(ApplicationError) as err:
        await run(acts, notify_input(case_ref, Milestone.SLA_WARNING, context=ctx))
    assert err.value.non_retryable
    assert await outbox(sessions, case_ref) == {}


# ------------------------------------------------------------------ callbacks
async def test_callback_task_created_once(acts, sessions, case_ref):
    due = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    req = CallbackRequest(
        case_ref=case_ref, stage="compliance_review", due_at=due, client_name="Ada Lovelace"
    )
    env = ActivityEnvironment()
    await env.run(acts.schedule_callback, req)
    await env.run(acts.schedule_callback, req.model_copy(update={"due_at": due + timedelta(1)}))
    await env.run(acts.schedule_callback, req.model_copy(update={"stage": "final_review"}))
    async with sessions() as s:
        rows = (
            await s.scalars(
                select(CallbackTaskRow)
                .where(CallbackTaskRow.case_ref == case_ref)
                .order_by(CallbackTaskRow.id)
            )
        ).all()
        total = await s.scalar(
            select(func.count())
            .select_from(CallbackTaskRow)
            .where(CallbackTaskRow.case_ref == case_ref)
        )
    assert total == 2
    assert [(r.stage, r.status, r.due_at, r.assignee_role) for r in rows] == [
        ("compliance_review", "open", due, "relationship_manager"),
        ("final_review", "open", due, "relationship_manager"),
    ]


# ------------------------------------------------------------------ odd providers
class _Exploding:
    """A provider client that fails in a way no adapter maps (a bug, an SDK surprise)."""

    provider = "exploding"
    reconcile_after_seconds = 3600.0

    def __init__(self) -> None:
        self.calls = 0
        self.lookups = 0

    def send(self, msg, *, idempotency_key):
        self.calls += 1
        raise RuntimeError("socket closed after the request was written")

    def find_sent(self, msg, *, idempotency_key, since):
        self.lookups += 1
        return None


async def test_unexpected_provider_error_is_checked_not_resent(sessions, case_ref):
    sender = _Exploding()
    acts = NotificationActivities(sessions, email=sender, sms=None)
    inp = notify_input(case_ref)
    with pytest.raises(RuntimeError):
        await run(acts, inp)
    row = (await outbox(sessions, case_ref))["email"]
    assert row.status == "checking" and "RuntimeError" in (row.error or "")
    with pytest.raises(ApplicationError) as err:
        await run(acts, inp)
    assert err.value.type == "DeliveryInDoubt"
    assert (sender.calls, sender.lookups) == (1, 1)


async def test_heartbeats_around_the_send(acts, sendgrid: SendGridStandin, case_ref):
    beats: list[str] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.extend(str(d) for d in details)
    await env.run(acts.notify, notify_input(case_ref))
    key = f"{case_ref}:case_created:1:email"
    assert beats == [f"sending {key}", f"sent {key}"]


async def test_the_client_reads_dates_in_their_own_time_zone(
    acts, sendgrid: SendGridStandin, case_ref
):
    ctx = context(case_ref) | {"estimated_completion": "2025-03-15T23:30:00+00:00"}
    tokyo = Recipient(name="Ada Lovelace", email=CLIENT_EMAIL, time_zone="Asia/Tokyo")
    await run(acts, notify_input(case_ref, context=ctx, recipient=tokyo))
    text = sendgrid.last.json["content"][0]["value"]
    assert "Estimated completion: 16 March 2025" in text  # the 15th in UTC, the 16th in Tokyo


async def test_every_attempt_sends_the_stored_copy_so_a_reconcile_finds_it(
    twilio: TwilioStandin, sessions, case_ref
):
    """Chaos R4's duplicate: each render mints a fresh portal link. A retry after a 500 used
    to send a new text, then its reconcile looked for the stored (first) text, missed, and
    sent a third. Now every attempt sends the row's copy."""
    links = iter(range(100))
    sender = TwilioSmsSender(
        TW_SID,
        TW_TOKEN,
        FROM_NUMBER,
        base_url=twilio.base_url,
        timeout=0.3,
        reconcile_after_seconds=30,
    )
    acts = NotificationActivities(
        sessions,
        email=None,
        sms=sender,
        portal_link=lambda ref: f"https://portal.example/{ref}/{next(links)}",
    )
    inp = notify_input(case_ref, channels=SMS_FIRST, urgent=True)
    twilio.fail_next(1, status=500)
    with pytest.raises(ApplicationError):
        await run(acts, inp)  # attempt 1: a 500, nothing sent
    twilio.stall_next(1, seconds=0.8)
    with pytest.raises(ApplicationError) as err:
        await run(acts, inp)  # attempt 2: times out, yet Twilio takes it
    assert err.value.type == "DeliveryInDoubt"
    await until(lambda: bool(twilio.messages), what="Twilio to create the stalled message")

    result = await run(acts, inp)  # attempt 3: asks, finds it

    assert result.results[-1].status == "sent"
    assert len(twilio.messages) == 1, [m["body"] for m in twilio.messages]
    row = (await outbox(sessions, case_ref))["sms"]
    assert twilio.messages[0]["body"] == row.body_text  # what was sent is what is stored


async def test_an_odd_answer_to_a_lookup_is_asked_again_not_given_up(
    acts, sendgrid: SendGridStandin, sessions, case_ref
):
    inp = notify_input(case_ref, Milestone.DOCUMENTS_NEEDED)
    await _in_doubt_row(sessions, inp, Channel.EMAIL, body="Please", age=timedelta(hours=1))
    sendgrid.fail_next(1, status=400)  # the lookup gets a 400 once

    with pytest.raises(ApplicationError) as err:
        await run(acts, inp)
    assert err.value.type == "DeliveryInDoubt"
    assert (await outbox(sessions, case_ref))["email"].status == "checking"

    result = await run(acts, inp)  # asks again: not listed, an hour on: sends once
    assert result.results[-1].status == "sent"
    assert [r.method for r in sendgrid.requests] == ["GET", "GET", "POST"]
    assert len(sendgrid.accepted) == 1
