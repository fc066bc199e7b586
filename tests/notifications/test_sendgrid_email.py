"""SendGridEmailSender against the local SendGrid stand-in (official SDK end to end)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator

import pytest

from integrations.delivery import (
    AmbiguousDeliveryError,
    DeliveryReceipt,
    EmailMessage,
    EmailSender,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from integrations.sendgrid_email import DEFAULT_HOST, SendGridEmailSender
from notifications import Milestone, render, sample_context
from tests.notifications._net import closed_port_url
from tests.standins.sendgrid_standin import SendGridStandin, running_sendgrid_standin

API_KEY = "SG.unit-test-key.abcdefghijklmnop"


@pytest.fixture
def sendgrid_standin() -> Iterator[SendGridStandin]:
    with running_sendgrid_standin(api_key=API_KEY) as standin:
        yield standin


@pytest.fixture
def sender(sendgrid_standin: SendGridStandin) -> SendGridEmailSender:
    return SendGridEmailSender(
        API_KEY,
        "onboarding@example.com",
        "Northbridge Onboarding",
        host=sendgrid_standin.base_url,
        timeout=2.0,
    )


def email(**overrides: object) -> EmailMessage:
    fields: dict[str, object] = {
        "to_email": "cfo@acme.example",
        "to_name": "Jane Doe",
        "subject": "Action needed: documents for case ONB-2025-000123",
        "text": "Plain body",
        "html": "<p>HTML body</p>",
        "case_ref": "ONB-2025-000123",
        "custom_args": {"milestone": "documents_needed"},
        "categories": ("onboarding",),
    }
    fields.update(overrides)
    return EmailMessage(**fields)  # type: ignore[arg-type]


def test_sends_rendered_email_and_returns_message_id(
    sender: SendGridEmailSender, sendgrid_standin: SendGridStandin
) -> None:
    rendered = render(Milestone.DOCUMENTS_NEEDED, sample_context(Milestone.DOCUMENTS_NEEDED))
    msg = email(subject=rendered.subject, text=rendered.text, html=rendered.html)

    receipt = sender.send(msg, idempotency_key="outbox-42:email")

    assert len(sendgrid_standin.accepted) == 1
    assert receipt == DeliveryReceipt("sendgrid", sendgrid_standin.accepted[0].message_id)
    assert receipt.message_id
    req = sendgrid_standin.last
    assert req.method == "POST"
    assert req.path == "/v3/mail/send"
    assert req.response_status == 202
    assert req.header("Authorization") == f"Bearer {API_KEY}"
    assert req.header("Content-Type") == "application/json"
    body = req.json
    assert body["personalizations"] == [{"to": [{"email": "cfo@acme.example", "name": "Jane Doe"}]}]
    assert body["from"] == {"email": "onboarding@example.com", "name": "Northbridge Onboarding"}
    assert body["subject"] == rendered.subject
    assert body["content"] == [
        {"type": "text/plain", "value": rendered.text},
        {"type": "text/html", "value": rendered.html},
    ]
    assert body["custom_args"] == {
        "milestone": "documents_needed",
        "idempotency_key": "outbox-42:email",
        "case_ref": "ONB-2025-000123",
    }
    assert body["categories"] == ["onboarding"]


def test_sender_satisfies_protocol(sender: SendGridEmailSender) -> None:
    assert isinstance(sender, EmailSender)
    assert API_KEY not in repr(sender)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_outages_are_retryable(
    sender: SendGridEmailSender, sendgrid_standin: SendGridStandin, status: int
) -> None:
    sendgrid_standin.fail_next(1, status)
    with pytest.raises(RetryableDeliveryError) as info:
        sender.send(email(), idempotency_key="k-1")
    assert info.value.status_code == status
    assert info.value.provider == "sendgrid"
    # the next attempt goes through: the failure was transient
    receipt = sender.send(email(), idempotency_key="k-1")
    assert receipt.message_id == sendgrid_standin.accepted[0].message_id
    assert [r.response_status for r in sendgrid_standin.requests] == [status, 202]


def test_injected_bad_request_is_permanent(
    sender: SendGridEmailSender, sendgrid_standin: SendGridStandin
) -> None:
    sendgrid_standin.fail_next(1, 400, message="The from address does not match a verified Sender")
    with pytest.raises(PermanentDeliveryError) as info:
        sender.send(email(), idempotency_key="k-2")
    assert info.value.status_code == 400
    assert "does not match a verified Sender" in info.value.detail


def test_invalid_request_is_rejected_by_validation_as_permanent(
    sender: SendGridEmailSender, sendgrid_standin: SendGridStandin
) -> None:
    with pytest.raises(PermanentDeliveryError) as info:
        sender.send(email(to_email="not-an-address", html=""), idempotency_key="k-3")
    assert info.value.status_code == 400
    assert "personalizations.0.to.0.email: Does not contain a valid address." in info.value.detail
    assert "content.1.value" in info.value.detail
    assert sendgrid_standin.accepted == []


def test_wrong_key_is_permanent_and_never_echoes_the_key(
    sendgrid_standin: SendGridStandin, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = "SG.wrong-key-that-must-not-leak"
    sender = SendGridEmailSender(
        wrong_key, "onboarding@example.com", "Onb", host=sendgrid_standin.base_url
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(PermanentDeliveryError) as info:
        sender.send(email(), idempotency_key="k-4")
    assert info.value.status_code == 401
    assert wrong_key not in str(info.value)
    assert wrong_key not in caplog.text
    assert info.value.__cause__ is None
    assert sendgrid_standin.last.bearer_token == wrong_key


def test_api_key_never_logged_on_success(
    sender: SendGridEmailSender, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        sender.send(email(), idempotency_key="k-5")
    assert API_KEY not in caplog.text
    assert "k-5" in caplog.text


def test_timeout_after_the_request_left_is_in_doubt(sendgrid_standin: SendGridStandin) -> None:
    sender = SendGridEmailSender(
        API_KEY, "onboarding@example.com", "Onb", host=sendgrid_standin.base_url, timeout=0.2
    )
    sendgrid_standin.stall_next(1, seconds=1.0)
    with pytest.raises(AmbiguousDeliveryError) as info:
        sender.send(email(), idempotency_key="k-6")
    assert info.value.status_code is None


def test_connection_refused_is_retryable() -> None:
    sender = SendGridEmailSender(
        API_KEY, "onboarding@example.com", "Onb", host=closed_port_url(), timeout=1.0
    )
    with pytest.raises(RetryableDeliveryError) as info:
        sender.send(email(), idempotency_key="k-7")
    assert not isinstance(info.value, AmbiguousDeliveryError), "never reached: a plain retry"
    assert API_KEY not in str(info.value)


def test_defaults_to_real_sendgrid_host() -> None:
    sender = SendGridEmailSender(API_KEY, "onboarding@example.com", "Onb")
    assert sender.host == DEFAULT_HOST == "https://api.sendgrid.com"


def test_sandbox_mode_and_reply_to_in_body() -> None:
    sender = SendGridEmailSender(API_KEY, "onboarding@example.com", "Onb", sandbox_mode=True)
    body = sender.build_request_body(email(reply_to="help@example.com"), idempotency_key="k")
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert body["reply_to"] == {"email": "help@example.com"}


def test_delivery_errors_survive_serialization() -> None:
    err = RetryableDeliveryError("sendgrid", "too many requests", status_code=429)
    clone = copy.deepcopy(err)  # goes through __reduce__, like pickle
    assert isinstance(clone, RetryableDeliveryError)
    assert (clone.status_code, clone.detail, str(clone)) == (429, err.detail, str(err))
