"""engine_sync_case: the projection, then each message and webhook, each sent at most once.

Messages go through the real ``notify`` (SendGrid stand-in, or the local outbox) and webhooks
through the real ``deliver`` (a signed HTTP receiver); a retried sync must never send twice.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.engine_store import EngineStoreActivities
from activities.notifications import NotificationActivities
from activities.webhooks import WebhookActivities
from integrations.sendgrid_email import SendGridEmailSender
from integrations.webhooks import WebhookSender
from notifications import Milestone
from schemas.case_state import PauseRecord
from schemas.contracts import SyncCaseInput
from schemas.webhooks import WebhookEvent
from store.models import Case, NotificationRow, WebhookDeliveryRow
from tests.compliance.conftest import SECRET, Receiver
from tests.delivery.conftest import FROM_EMAIL, FROM_NAME, notify_input
from tests.engine_store.conftest import T0, dead_letters, engine_case, projection
from tests.waiting import until


async def sync(store: EngineStoreActivities, inp: SyncCaseInput):
    return await ActivityEnvironment().run(store.sync, inp)


async def outbox(sessions, ref: str) -> dict[str, NotificationRow]:
    async with sessions() as s:
        found = await s.scalars(select(NotificationRow).where(NotificationRow.case_ref == ref))
        return {row.channel: row for row in found}


def webhook(ref: str, n: int = 1) -> WebhookEvent:
    return WebhookEvent(
        event_id=f"{ref}:order.approved:{n}",
        event_type="order.approved",
        case_ref=ref,
        occurred_at=T0,
        data={"case_ref": ref},
    )


async def test_a_message_is_sent_once_even_when_the_sync_runs_twice(
    sessions, sendgrid, email_sender
):
    notifications = NotificationActivities(sessions, email=email_sender, sms=None)
    store = EngineStoreActivities(sessions, notifications, None)
    ref = await engine_case(sessions)
    inp = SyncCaseInput(case_ref=ref, projection=projection(ref, 1), messages=[notify_input(ref)])

    first = await sync(store, inp)
    second = await sync(store, inp)

    assert first.delivered == 1 and first.failed == [] and not first.dead_lettered
    assert second.delivered == 1 and second.failed == []
    assert len(sendgrid.accepted) == 1, "one email, however often the sync runs"
    rows = await outbox(sessions, ref)
    assert rows["email"].status == "sent" and rows["email"].attempts == 1
    assert rows["in_app"].status == "sent"
    async with sessions() as s:
        assert (await s.get(Case, ref)).projection_version == 1


async def test_local_outbox_message_is_stored_once(sessions):
    notifications = NotificationActivities(sessions, email=None, sms=None)
    store = EngineStoreActivities(sessions, notifications, None)
    ref = await engine_case(sessions)
    inp = SyncCaseInput(case_ref=ref, messages=[notify_input(ref)])

    await sync(store, inp)
    result = await sync(store, inp)

    assert result.delivered == 1 and result.failed == []
    async with sessions() as s:
        rows = list(await s.scalars(select(NotificationRow).where(NotificationRow.case_ref == ref)))
    assert sorted((r.channel, r.status) for r in rows) == [
        ("email", "local_outbox"),
        ("in_app", "sent"),
    ]


async def test_a_transient_send_failure_retries_the_sync_and_still_sends_once(
    sessions, sendgrid, email_sender
):
    notifications = NotificationActivities(sessions, email=email_sender, sms=None)
    store = EngineStoreActivities(sessions, notifications, None)
    ref = await engine_case(sessions)
    inp = SyncCaseInput(case_ref=ref, messages=[notify_input(ref)])
    sendgrid.fail_next(1, status=500)

    with pytest.raises(ApplicationError) as raised:
        await sync(store, inp)
    assert not raised.value.non_retryable

    retried = await sync(store, inp)
    await sync(store, inp)

    assert retried.delivered == 1 and retried.failed == []
    assert len(sendgrid.accepted) == 1
    assert (await outbox(sessions, ref))["email"].attempts == 2


async def test_a_message_in_doubt_does_not_hold_back_the_rest_of_the_batch(sessions, sendgrid):
    """The first send times out after SendGrid took it; the second still goes out in the same
    sync, which then raises the in-doubt error; the retry reconciles, sending nothing twice."""
    sender = SendGridEmailSender(
        sendgrid.api_key,
        FROM_EMAIL,
        FROM_NAME,
        host=sendgrid.base_url,
        timeout=0.3,
        reconcile_after_seconds=30,
    )
    store = EngineStoreActivities(
        sessions, NotificationActivities(sessions, email=sender, sms=None), None
    )
    ref = await engine_case(sessions)
    first, second = notify_input(ref), notify_input(ref, Milestone.DOCUMENTS_NEEDED)
    inp = SyncCaseInput(case_ref=ref, messages=[first, second])
    sendgrid.stall_next(1, seconds=0.8)

    with pytest.raises(ApplicationError) as raised:
        await sync(store, inp)
    assert raised.value.type == "DeliveryInDoubt" and not raised.value.non_retryable
    keys = [m.body["custom_args"]["idempotency_key"] for m in sendgrid.accepted]
    assert f"{ref}:documents_needed:1:email" in keys, "the second message went out meanwhile"
    await until(lambda: len(sendgrid.accepted) == 2, what="the stalled first send to land")

    retried = await sync(store, inp)

    assert retried.delivered == 2 and retried.failed == []
    assert len(sendgrid.accepted) == 2
    assert sorted(r.method for r in sendgrid.requests) == ["GET", "POST", "POST"]


async def test_permanent_failures_are_reported_and_do_not_fail_the_sync(
    sessions, sendgrid, email_sender, receiver: Receiver
):
    notifications = NotificationActivities(sessions, email=email_sender, sms=None)
    webhooks = WebhookActivities(sessions, WebhookSender(receiver.url, SECRET), max_attempts=1)
    store = EngineStoreActivities(sessions, notifications, webhooks)
    ref = await engine_case(sessions)
    sendgrid.fail_next(1, status=400, message="Does not contain a valid address.")
    receiver.fail_next(1, 410)
    bad_projection = projection(
        ref,
        1,
        pauses=[PauseRecord(seq=1, stage="s", paused_at=T0, paused_by="ops", reason="x\x00")],
    )
    inp = SyncCaseInput(
        case_ref=ref,
        projection=bad_projection,
        messages=[
            notify_input(ref),  # email refused for good (400), no channel left
            notify_input(ref).model_copy(update={"milestone": "no_such_milestone"}),
            notify_input(ref, occurrence=2),  # fine
        ],
        webhooks=[webhook(ref, 1), webhook(ref, 2)],  # the first dead-letters, the second lands
    )

    result = await sync(store, inp)

    assert result.dead_lettered
    assert len(await dead_letters(sessions, ref)) == 1
    assert result.failed == [
        "notify:case_created:1:client:rejected",
        "notify:no_such_milestone:1:client:InvalidTemplateContext",
        f"webhook:order.approved:{ref}:order.approved:1:dead_letter",
    ]
    assert result.delivered == 2
    assert len(sendgrid.accepted) == 1 and len(receiver.received) == 2
    async with sessions() as s:
        statuses = dict(
            (
                await s.execute(
                    select(WebhookDeliveryRow.event_id, WebhookDeliveryRow.status).where(
                        WebhookDeliveryRow.case_ref == ref
                    )
                )
            ).all()
        )
    assert statuses == {
        f"{ref}:order.approved:1": "dead_letter",
        f"{ref}:order.approved:2": "delivered",
    }


async def test_a_webhook_failure_within_its_budget_retries_the_sync(sessions, receiver: Receiver):
    webhooks = WebhookActivities(sessions, WebhookSender(receiver.url, SECRET), max_attempts=3)
    store = EngineStoreActivities(sessions, None, webhooks)
    ref = await engine_case(sessions)
    receiver.fail_next(1, 503)
    inp = SyncCaseInput(case_ref=ref, webhooks=[webhook(ref)])

    with pytest.raises(ApplicationError):
        await sync(store, inp)
    result = await sync(store, inp)
    again = await sync(store, inp)

    assert result.delivered == 1 and again.delivered == 1
    assert len(receiver.received) == 2, "one failed attempt, one delivery, never a third"
