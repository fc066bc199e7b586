"""Signed webhooks against a real local receiver; the delivery activity's log and budget."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import socket
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.webhooks import WebhookActivities
from integrations.delivery import PermanentDeliveryError, RetryableDeliveryError
from integrations.webhooks import WebhookSender, encode_event, verify_signature
from schemas.webhooks import WebhookEvent
from store.models import WebhookDeliveryRow
from tests.compliance.conftest import SECRET, Receiver, make_case

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def event(ref: str, event_id: str | None = None, **data: object) -> WebhookEvent:
    return WebhookEvent(
        event_id=event_id or f"{ref}:case.completed:1",
        event_type="case.completed",
        case_ref=ref,
        occurred_at=T0,
        data=data or {"status": "completed", "account_number": "ACC00000000017"},
    )


def env_at(attempt: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    return env


async def delivery_rows(sessions, event_id: str) -> list[WebhookDeliveryRow]:
    async with sessions() as s:
        return list(
            await s.scalars(
                select(WebhookDeliveryRow).where(WebhookDeliveryRow.event_id == event_id)
            )
        )


# ------------------------------------------------------------------------- the sender
async def test_send_posts_a_signed_compact_body_with_headers(receiver: Receiver):
    ev = event("REF-1")
    status = await WebhookSender(receiver.url, SECRET).send(ev)

    assert status == 204
    [got] = receiver.received
    assert got.signature_ok
    assert got.body == encode_event(ev)
    assert b", " not in got.body and b": " not in got.body  # compact separators
    assert got.json == {
        "event_id": "REF-1:case.completed:1",
        "event_type": "case.completed",
        "case_ref": "REF-1",
        "occurred_at": "2026-11-22T09:00:00Z",
        "data": {"account_number": "ACC00000000017", "status": "completed"},
    }
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["x-onboarding-event-id"] == ev.event_id
    assert headers["x-onboarding-event-type"] == "case.completed"
    ts = headers["x-onboarding-timestamp"]
    expected = hmac.new(SECRET.encode(), f"{ts}.".encode() + got.body, hashlib.sha256)
    assert headers["x-onboarding-signature"] == f"v1={expected.hexdigest()}"


def test_the_same_event_always_encodes_to_the_same_bytes():
    a = event("R", data_b=1, data_a=2)
    b = WebhookEvent.model_validate(json.loads(encode_event(a)))
    assert encode_event(a) == encode_event(b)


@pytest.mark.parametrize("status", [408, 429, 500, 503])
async def test_transient_statuses_are_retryable(receiver: Receiver, status: int):
    receiver.fail_next(1, status)
    with pytest.raises(RetryableDeliveryError) as info:
        await WebhookSender(receiver.url, SECRET).send(event("R"))
    assert info.value.status_code == status


@pytest.mark.parametrize("status", [400, 401, 404, 410, 301])
async def test_other_statuses_are_permanent(receiver: Receiver, status: int):
    receiver.fail_next(1, status)
    with pytest.raises(PermanentDeliveryError) as info:
        await WebhookSender(receiver.url, SECRET).send(event("R"))
    assert info.value.status_code == status


async def test_a_wrong_secret_is_refused_by_the_receiver(receiver: Receiver):
    with pytest.raises(PermanentDeliveryError):
        await WebhookSender(receiver.url, "not-the-secret").send(event("R"))
    assert not receiver.received[0].signature_ok


async def test_connection_refused_is_retryable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RetryableDeliveryError) as info:
        await WebhookSender(f"http://127.0.0.1:{port}/x", SECRET, timeout=2).send(event("R"))
    assert info.value.status_code is None


async def test_timeout_is_retryable():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)

    sender = WebhookSender("https://hooks.example/x", SECRET, transport=httpx.MockTransport(slow))
    with pytest.raises(RetryableDeliveryError, match="timed out"):
        await sender.send(event("R"))


def test_sender_refuses_a_relative_url_or_empty_secret():
    with pytest.raises(ValueError, match="absolute"):
        WebhookSender("/hooks", SECRET)
    with pytest.raises(ValueError, match="secret"):
        WebhookSender("https://hooks.example/x", "")


# ------------------------------------------------------------------ verify_signature
def signed(body: bytes, ts: int, secret: str = SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()


def test_verify_accepts_a_fresh_valid_signature():
    body, ts = b'{"a":1}', 1_800_000_000
    assert verify_signature(
        secret=SECRET, timestamp=str(ts), signature=signed(body, ts), body=body, now=ts + 10
    )


def test_verify_rejects_a_tampered_body():
    body, ts = b'{"a":1}', 1_800_000_000
    assert not verify_signature(
        secret=SECRET, timestamp=ts, signature=signed(body, ts), body=b'{"a":2}', now=ts
    )


@pytest.mark.parametrize("skew", [301, -301, 86_400])
def test_verify_rejects_stale_or_future_timestamps(skew: int):
    body, ts = b"{}", 1_800_000_000
    assert not verify_signature(
        secret=SECRET, timestamp=ts, signature=signed(body, ts), body=body, now=ts + skew
    )


def test_verify_rejects_a_changed_timestamp_wrong_secret_and_garbage():
    body, ts = b"{}", 1_800_000_000
    good = signed(body, ts)
    assert not verify_signature(secret=SECRET, timestamp=ts + 1, signature=good, body=body, now=ts)
    assert not verify_signature(secret="other", timestamp=ts, signature=good, body=body, now=ts)
    assert not verify_signature(secret=SECRET, timestamp="soon", signature=good, body=body)
    assert not verify_signature(
        secret=SECRET, timestamp=ts, signature=good.removeprefix("v1="), body=body, now=ts
    )


def test_verify_accepts_any_of_several_signatures_during_rotation():
    body, ts = b"{}", 1_800_000_000
    header = f"{signed(body, ts, 'old-secret')}, {signed(body, ts)}"
    assert verify_signature(secret=SECRET, timestamp=ts, signature=header, body=body, now=ts)


# ------------------------------------------------------------------- the activity
async def test_delivered_once_and_not_again(sessions, receiver: Receiver):
    ref = await make_case(sessions)
    ev = event(ref)
    acts = WebhookActivities(sessions, WebhookSender(receiver.url, SECRET), max_attempts=3)

    first = await ActivityEnvironment().run(acts.deliver, ev)
    again = await env_at(2).run(acts.deliver, ev)

    assert first.status == "delivered" and first.attempts == 1 and first.last_status_code == 204
    assert again == first
    assert len(receiver.received) == 1 and receiver.received[0].signature_ok
    [row] = await delivery_rows(sessions, ev.event_id)
    assert row.status == "delivered" and row.attempts == 1 and row.delivered_at is not None
    assert row.url == receiver.url and row.case_ref == ref
    assert row.payload["data"] == ev.data and row.last_error is None


async def test_failures_below_the_budget_raise_and_are_recorded(sessions, receiver: Receiver):
    ref = await make_case(sessions)
    ev = event(ref)
    acts = WebhookActivities(sessions, WebhookSender(receiver.url, SECRET), max_attempts=3)
    receiver.fail_next(2, 503)

    for attempt in (1, 2):
        with pytest.raises(ApplicationError) as info:
            await env_at(attempt).run(acts.deliver, ev)
        assert info.value.type == "WebhookDeliveryFailed" and not info.value.non_retryable
        [row] = await delivery_rows(sessions, ev.event_id)
        assert row.status == "pending" and row.attempts == attempt
        assert row.last_status_code == 503 and "503" in (row.last_error or "")

    result = await env_at(3).run(acts.deliver, ev)
    assert result.status == "delivered" and result.attempts == 3
    assert len(receiver.received) == 3


async def test_at_the_budget_the_event_is_dead_lettered(sessions, receiver: Receiver):
    ref = await make_case(sessions)
    ev = event(ref)
    acts = WebhookActivities(sessions, WebhookSender(receiver.url, SECRET), max_attempts=2)
    receiver.fail_next(5, 400)

    with pytest.raises(ApplicationError, match="permanent"):
        await env_at(1).run(acts.deliver, ev)
    result = await env_at(2).run(acts.deliver, ev)

    assert result.status == "dead_letter"
    assert result.attempts == 2 and result.last_status_code == 400
    [row] = await delivery_rows(sessions, ev.event_id)
    assert row.status == "dead_letter" and row.delivered_at is None
    # Dead letters are final: running the activity again sends nothing.
    assert await env_at(1).run(acts.deliver, ev) == result
    assert len(receiver.received) == 2


async def test_connection_failure_is_recorded_without_a_status(sessions):
    ref = await make_case(sessions)
    ev = event(ref)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = WebhookSender(f"http://127.0.0.1:{port}/x", SECRET, timeout=2)
    result = await env_at(1).run(WebhookActivities(sessions, sender, max_attempts=1).deliver, ev)
    assert result.status == "dead_letter" and result.last_status_code is None
    [row] = await delivery_rows(sessions, ev.event_id)
    assert row.last_error and row.attempts == 1


async def test_no_endpoint_configured_is_skipped_without_a_row(sessions):
    ref = await make_case(sessions)
    ev = event(ref)
    result = await ActivityEnvironment().run(
        WebhookActivities(sessions, None, max_attempts=3).deliver, ev
    )
    assert result.status == "skipped" and result.attempts == 0
    assert await delivery_rows(sessions, ev.event_id) == []


async def test_a_smaller_retry_policy_dead_letters_on_its_last_attempt(sessions, receiver):
    ref = await make_case(sessions)
    ev = event(ref)
    acts = WebhookActivities(sessions, WebhookSender(receiver.url, SECRET), max_attempts=8)
    receiver.fail_next(1, 500)
    env = env_at(2)
    env.info = dataclasses.replace(env.info, retry_policy=RetryPolicy(maximum_attempts=2))
    result = await env.run(acts.deliver, ev)
    assert result.status == "dead_letter" and result.last_status_code == 500
