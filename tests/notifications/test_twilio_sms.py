"""TwilioSmsSender against the local Twilio stand-in (official SDK end to end)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

from integrations.delivery import (
    AmbiguousDeliveryError,
    DeliveryReceipt,
    PermanentDeliveryError,
    RetryableDeliveryError,
    SmsMessage,
    SmsSender,
)
from integrations.twilio_sms import BaseUrlTwilioHttpClient, TwilioSmsSender
from notifications import Milestone, render, sample_context
from tests.notifications._net import closed_port_url
from tests.standins.twilio_standin import TwilioStandin, running_twilio_standin

ACCOUNT_SID = "AC" + "fedcba9876543210" * 2
AUTH_TOKEN = "unit-test-auth-token-7f3a9c"
FROM = "+15005550006"
TO = "+447700900123"


@pytest.fixture
def twilio_standin() -> Iterator[TwilioStandin]:
    with running_twilio_standin(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as standin:
        yield standin


@pytest.fixture
def sender(twilio_standin: TwilioStandin) -> TwilioSmsSender:
    return TwilioSmsSender(
        ACCOUNT_SID, AUTH_TOKEN, FROM, base_url=twilio_standin.base_url, timeout=2.0
    )


def test_sends_rendered_sms_and_returns_sid(
    sender: TwilioSmsSender, twilio_standin: TwilioStandin
) -> None:
    rendered = render(Milestone.SETUP_COMPLETED, sample_context(Milestone.SETUP_COMPLETED))
    assert rendered.sms is not None

    receipt = sender.send(
        SmsMessage(to_number=TO, body=rendered.sms, case_ref="ONB-1"),
        idempotency_key="outbox-7:sms",
    )

    assert len(twilio_standin.messages) == 1
    sid = twilio_standin.messages[0]["sid"]
    assert receipt == DeliveryReceipt("twilio", sid)
    assert sid.startswith("SM")
    assert len(sid) == 34
    req = twilio_standin.last
    assert req.method == "POST"
    assert req.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert req.response_status == 201
    assert req.basic_auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert req.header("Content-Type") == "application/x-www-form-urlencoded"
    assert req.form == {"To": TO, "From": FROM, "Body": rendered.sms}


def test_status_callback_is_forwarded(twilio_standin: TwilioStandin) -> None:
    sender = TwilioSmsSender(
        ACCOUNT_SID,
        AUTH_TOKEN,
        FROM,
        base_url=twilio_standin.base_url,
        status_callback="https://hooks.example.com/twilio/status",
    )
    sender.send(SmsMessage(to_number=TO, body="hi"), idempotency_key="ONB-1:case_created:1:sms")
    # the callback URL carries our key, so a status callback finds its outbox row
    assert twilio_standin.last.form["StatusCallback"] == (
        "https://hooks.example.com/twilio/status?key=ONB-1%3Acase_created%3A1%3Asms"
    )


def test_sender_satisfies_protocol(sender: TwilioSmsSender) -> None:
    assert isinstance(sender, SmsSender)
    assert AUTH_TOKEN not in repr(sender)


def test_invalid_number_is_permanent_with_twilio_code(
    sender: TwilioSmsSender, twilio_standin: TwilioStandin
) -> None:
    with pytest.raises(PermanentDeliveryError) as info:
        sender.send(SmsMessage(to_number="07700 900123", body="hi"), idempotency_key="k")
    assert info.value.status_code == 400
    assert info.value.provider_code == 21211
    assert "Invalid 'To' Phone Number" in info.value.detail
    assert not info.value.detail.startswith("Unable to create record")
    assert twilio_standin.messages == []


def test_empty_body_is_permanent(sender: TwilioSmsSender) -> None:
    with pytest.raises(PermanentDeliveryError) as info:
        sender.send(SmsMessage(to_number=TO, body=""), idempotency_key="k")
    assert info.value.provider_code == 21602


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, 20500), (503, 20503)])
def test_throttling_and_outages_are_retryable(
    sender: TwilioSmsSender, twilio_standin: TwilioStandin, status: int, code: int
) -> None:
    twilio_standin.fail_next(1, status)
    with pytest.raises(RetryableDeliveryError) as info:
        sender.send(SmsMessage(to_number=TO, body="hi"), idempotency_key="k")
    assert (info.value.status_code, info.value.provider_code) == (status, code)
    receipt = sender.send(SmsMessage(to_number=TO, body="hi"), idempotency_key="k")
    assert receipt.message_id == twilio_standin.messages[0]["sid"]
    assert [r.response_status for r in twilio_standin.requests] == [status, 201]


def test_injected_400_is_permanent(sender: TwilioSmsSender, twilio_standin: TwilioStandin) -> None:
    twilio_standin.fail_next(1, 400, message="Attempt to send to unsubscribed recipient")
    with pytest.raises(PermanentDeliveryError) as info:
        sender.send(SmsMessage(to_number=TO, body="hi"), idempotency_key="k")
    assert "unsubscribed recipient" in info.value.detail


def test_wrong_token_is_permanent_and_not_leaked(twilio_standin: TwilioStandin) -> None:
    wrong = "wrong-token-that-must-not-leak"
    sender = TwilioSmsSender(ACCOUNT_SID, wrong, FROM, base_url=twilio_standin.base_url)
    with pytest.raises(PermanentDeliveryError) as info:
        sender.send(SmsMessage(to_number=TO, body="hi"), idempotency_key="k")
    assert (info.value.status_code, info.value.provider_code) == (401, 20003)
    assert wrong not in str(info.value)
    assert info.value.__cause__ is None


def test_timeout_after_the_request_left_is_in_doubt(twilio_standin: TwilioStandin) -> None:
    sender = TwilioSmsSender(
        ACCOUNT_SID, AUTH_TOKEN, FROM, base_url=twilio_standin.base_url, timeout=0.2
    )
    twilio_standin.stall_next(1, seconds=1.0)
    with pytest.raises(AmbiguousDeliveryError):
        sender.send(SmsMessage(to_number=TO, body="hi"), idempotency_key="k")


def test_connection_refused_is_retryable() -> None:
    sender = TwilioSmsSender(ACCOUNT_SID, AUTH_TOKEN, FROM, base_url=closed_port_url(), timeout=1.0)
    with pytest.raises(RetryableDeliveryError) as info:
        sender.send(SmsMessage(to_number=TO, body="hi"), idempotency_key="k")
    assert not isinstance(info.value, AmbiguousDeliveryError), "never reached: a plain retry"
    assert AUTH_TOKEN not in str(info.value)


def test_real_twilio_host_is_used_without_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TWILIO_EDGE", "TWILIO_REGION"):
        monkeypatch.delenv(var, raising=False)
    seen: list[str] = []

    def fake_request(self: TwilioHttpClient, method: str, url: str, **kwargs: Any) -> Response:
        seen.append(url)
        return Response(
            201,
            '{"sid": "SM00000000000000000000000000000000", "status": "queued"}',
        )

    monkeypatch.setattr(TwilioHttpClient, "request", fake_request)
    sender = TwilioSmsSender(ACCOUNT_SID, AUTH_TOKEN, FROM)
    receipt = sender.send(SmsMessage(to_number=TO, body="hi"), idempotency_key="k")
    assert receipt.message_id == "SM00000000000000000000000000000000"
    assert seen == [f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"]


def test_base_url_rewrite_only_touches_twilio_hosts() -> None:
    client = BaseUrlTwilioHttpClient("http://127.0.0.1:8099/twilio/")
    assert (
        client.rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?x=1")
        == "http://127.0.0.1:8099/twilio/2010-04-01/Accounts/AC1/Messages.json?x=1"
    )
    assert client.rewrite("https://api.dublin.ie1.twilio.com/2010-04-01/A") == (
        "http://127.0.0.1:8099/twilio/2010-04-01/A"
    )
    assert client.rewrite("https://example.com/2010-04-01/A") == "https://example.com/2010-04-01/A"
    assert client.rewrite("https://eviltwilio.com/x") == "https://eviltwilio.com/x"
    with pytest.raises(ValueError, match="absolute"):
        BaseUrlTwilioHttpClient("127.0.0.1:8099")
