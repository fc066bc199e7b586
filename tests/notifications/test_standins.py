"""The stand-ins themselves honour the real APIs' contracts (raw HTTP, no SDK)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.standins import (
    SendGridStandin,
    TwilioStandin,
    running_sendgrid_standin,
    running_twilio_standin,
)

KEY = "SG.standin-key"


@pytest.fixture
def sg() -> Iterator[SendGridStandin]:
    with running_sendgrid_standin(api_key=KEY) as standin:
        yield standin


@pytest.fixture
def tw() -> Iterator[TwilioStandin]:
    with running_twilio_standin() as standin:
        yield standin


def valid_mail() -> dict[str, object]:
    return {
        "personalizations": [{"to": [{"email": "a@example.com"}]}],
        "from": {"email": "b@example.com"},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "t"}, {"type": "text/html", "value": "h"}],
    }


def test_sendgrid_accepts_valid_mail(sg: SendGridStandin) -> None:
    resp = httpx.post(
        f"{sg.base_url}/v3/mail/send", json=valid_mail(), headers={"Authorization": f"Bearer {KEY}"}
    )
    assert resp.status_code == 202
    assert resp.content == b""
    assert resp.headers["X-Message-Id"] == sg.accepted[0].message_id


def test_sendgrid_rejects_missing_auth(sg: SendGridStandin) -> None:
    resp = httpx.post(f"{sg.base_url}/v3/mail/send", json=valid_mail())
    assert resp.status_code == 401
    assert set(resp.json()["errors"][0]) == {"message", "field", "help"}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda m: m.pop("personalizations"), "personalizations"),
        (lambda m: m.update(personalizations=[{"to": []}]), "personalizations.0.to"),
        (
            lambda m: m.update(personalizations=[{"to": [{"email": "x"}]}]),
            "personalizations.0.to.0.email",
        ),
        (lambda m: m.pop("from"), "from"),
        (lambda m: m.pop("subject"), "subject"),
        (lambda m: m.pop("content"), "content"),
        (
            lambda m: m.update(
                content=[{"type": "text/html", "value": "h"}, {"type": "text/plain", "value": "t"}]
            ),
            "content",
        ),
        (lambda m: m.update(custom_args={"n": 1}), "custom_args.n"),
    ],
)
def test_sendgrid_rejects_malformed_mail(sg: SendGridStandin, mutate, field: str) -> None:
    mail = valid_mail()
    mutate(mail)
    resp = httpx.post(
        f"{sg.base_url}/v3/mail/send", json=mail, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert resp.status_code == 400
    errors = resp.json()["errors"]
    assert field in [e["field"] for e in errors]
    assert all(e["message"] for e in errors)
    assert sg.accepted == []


def test_sendgrid_rejects_invalid_json(sg: SendGridStandin) -> None:
    resp = httpx.post(
        f"{sg.base_url}/v3/mail/send",
        content=b"{nope",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    assert resp.json() == {"errors": [{"message": "Bad Request", "field": None, "help": None}]}


def test_twilio_creates_message(tw: TwilioStandin) -> None:
    resp = httpx.post(
        f"{tw.base_url}/2010-04-01/Accounts/{tw.account_sid}/Messages.json",
        data={"To": "+14155550100", "From": "+15005550006", "Body": "hello"},
        auth=(tw.account_sid, tw.auth_token),
    )
    assert resp.status_code == 201
    payload = resp.json()
    assert payload["sid"].startswith("SM")
    assert payload["status"] == "queued"
    assert payload["to"] == "+14155550100"
    assert payload["account_sid"] == tw.account_sid


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": "+15005550006", "Body": "x"}, 21604),
        ({"To": "12345", "From": "+15005550006", "Body": "x"}, 21211),
        ({"To": "+14155550100", "Body": "x"}, 21603),
        ({"To": "+14155550100", "From": "abc", "Body": "x"}, 21212),
        ({"To": "+14155550100", "From": "+15005550006"}, 21602),
        ({"To": "+14155550100", "From": "+15005550006", "Body": "x" * 1601}, 21617),
    ],
)
def test_twilio_validation_errors(tw: TwilioStandin, form: dict[str, str], code: int) -> None:
    resp = httpx.post(
        f"{tw.base_url}/2010-04-01/Accounts/{tw.account_sid}/Messages.json",
        data=form,
        auth=(tw.account_sid, tw.auth_token),
    )
    assert resp.status_code == 400
    body = resp.json()
    assert body["code"] == code
    assert body["status"] == 400
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert body["message"]


def test_twilio_auth_and_account_checks(tw: TwilioStandin) -> None:
    url = f"{tw.base_url}/2010-04-01/Accounts/{tw.account_sid}/Messages.json"
    form = {"To": "+14155550100", "From": "+15005550006", "Body": "x"}
    assert httpx.post(url, data=form).json()["code"] == 20003
    assert httpx.post(url, data=form, auth=(tw.account_sid, "bad")).status_code == 401
    other = f"{tw.base_url}/2010-04-01/Accounts/AC{'1' * 32}/Messages.json"
    assert httpx.post(other, data=form, auth=(tw.account_sid, tw.auth_token)).status_code == 404


def test_failure_injection_counts_down(tw: TwilioStandin) -> None:
    url = f"{tw.base_url}/2010-04-01/Accounts/{tw.account_sid}/Messages.json"
    form = {"To": "+14155550100", "From": "+15005550006", "Body": "x"}
    tw.fail_next(2, 503)
    statuses = [
        httpx.post(url, data=form, auth=(tw.account_sid, tw.auth_token)).status_code
        for _ in range(3)
    ]
    assert statuses == [503, 503, 201]
    assert [r.injected_failure for r in tw.requests] == [True, True, False]
