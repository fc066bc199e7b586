"""Our webhooks verify with the Standard Webhooks reference library, as a receiver would."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from integrations.webhooks import WebhookSender
from schemas.webhooks import WebhookEvent

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def event() -> WebhookEvent:
    return WebhookEvent(
        event_id="C-123:case.resolved:1",
        event_type="case.resolved",
        case_ref="C-123",
        occurred_at=NOW,
        data={"resolution": "completed"},
    )


def receiver_secret(raw: str) -> str:
    """What a receiver configures for our raw secret: the spec's whsec_ + base64."""
    return "whsec_" + base64.b64encode(raw.encode()).decode()


def sender(secret: str, **kwargs) -> WebhookSender:
    return WebhookSender("https://hooks.example/in", secret, clock=NOW.timestamp, **kwargs)


def verify(secret: str, body: bytes, headers: dict[str, str]) -> dict:
    with pytest.MonkeyPatch.context() as mp:  # the library checks the timestamp against now
        mp.setattr("standardwebhooks.webhooks.datetime", _Frozen)
        return Webhook(secret).verify(body, headers)


class _Frozen(datetime):
    @classmethod
    def now(cls, tz=None):
        return NOW if tz is None else NOW.astimezone(tz)


def test_a_receiver_verifies_our_webhook_with_the_reference_library():
    body, headers = sender("s3cret-for-webhooks").build_request(event())
    payload = verify(receiver_secret("s3cret-for-webhooks"), body, headers)
    assert payload["event_id"] == "C-123:case.resolved:1"
    assert headers["webhook-id"] == "C-123:case.resolved:1"  # dedupe key for receivers
    assert json.loads(body)["data"] == {"resolution": "completed"}


def test_a_whsec_secret_is_used_as_the_spec_says():
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    body, headers = sender(secret).build_request(event())
    assert verify(secret, body, headers)["case_ref"] == "C-123"


def test_a_tampered_body_or_a_wrong_secret_fails_verification():
    body, headers = sender("s3cret-for-webhooks").build_request(event())
    with pytest.raises(WebhookVerificationError):
        verify(
            receiver_secret("s3cret-for-webhooks"), body.replace(b"completed", b"rejected"), headers
        )
    with pytest.raises(WebhookVerificationError):
        verify(receiver_secret("another-secret"), body, headers)


def test_during_a_rotation_receivers_with_the_old_or_new_secret_both_verify():
    body, headers = sender("new-secret", previous_secrets=["old-secret"]).build_request(event())
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify(receiver_secret("new-secret"), body, headers)
    assert verify(receiver_secret("old-secret"), body, headers)
