"""Provider events through HTTP on the real stack (API, worker, Temporal dev server, Postgres)
with the official SendGrid/Twilio clients pointed at the stand-ins.

- SendGrid's Event Webhook: a forged signature is 403 and records nothing; a valid bounce
  sends the message by SMS, once, however often SendGrid repeats itself.
- Twilio: a status callback with a bad signature is 403; an undelivered SMS falls back to
  email, once; STOP stops SMS to that number until START; HELP answers with help.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select
from temporalio.testing import ActivityEnvironment
from twilio.request_validator import RequestValidator

from activities.notifications import NotificationActivities, build_senders
from core.settings import Settings
from schemas.contracts import fallback_workflow_id
from schemas.enums import Channel
from schemas.notifications import FallbackResult
from store.db import SessionFactory
from store.models import (
    CaseEvent,
    ChannelConsent,
    DeliveryEvent,
    InboundMessage,
    NotificationRow,
)
from tests.api_engine.conftest import build_app
from tests.conftest import new_ref, running_worker, test_settings
from tests.delivery.conftest import (
    CLIENT_EMAIL,
    CLIENT_PHONE,
    FROM_NUMBER,
    SG_KEY,
    TW_SID,
    TW_TOKEN,
    notify_input,
)
from tests.factories import profile_json
from tests.standins.sendgrid_standin import SendGridStandin
from tests.standins.twilio_standin import TwilioStandin
from tests.waiting import eventually

API = "http://t"
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


@dataclass
class Stack:
    http: httpx.AsyncClient
    acts: NotificationActivities
    settings: Settings
    key: ec.EllipticCurvePrivateKey
    sendgrid: SendGridStandin
    twilio: TwilioStandin
    temporal: Any

    async def fallback_done(self, outbox_key: str) -> FallbackResult:
        """The message's one fallback, finished: what it did is then all it will ever do."""
        handle = self.temporal.get_workflow_handle(fallback_workflow_id(outbox_key))
        return FallbackResult.model_validate(await handle.result())

    async def send(self, ref: str, channels: list[Channel], **overrides: Any) -> dict[str, Any]:
        """Run the notify activity as the worker would; the result's rows by channel."""
        result = await ActivityEnvironment().run(
            self.acts.notify, notify_input(ref, channels=channels, **overrides)
        )
        return {r.channel.value: r for r in result.results}

    def signed(self, events: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(events).encode()
        stamp = str(int(datetime.now(UTC).timestamp()))
        sig = self.key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return body, {SIGNATURE: base64.b64encode(sig).decode(), TIMESTAMP: stamp}

    async def twilio_post(
        self, path: str, form: dict[str, str], *, token: str = TW_TOKEN
    ) -> httpx.Response:
        url = f"{API}{path}"
        signature = RequestValidator(token).compute_signature(url, form)
        return await self.http.post(
            path,
            content=urlencode(form),
            headers={
                "X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )


def _public_key(key: ec.EllipticCurvePrivateKey) -> str:
    """As SendGrid shows it under Mail Settings: base64 DER, no PEM armour."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.fixture
async def stack(
    tmp_path: Path,
    sessions: SessionFactory,
    dev_server_env: Any,
    sendgrid: SendGridStandin,
    twilio: TwilioStandin,
) -> AsyncIterator[Stack]:
    key = ec.generate_private_key(ec.SECP256R1())
    base = test_settings(
        data_dir=tmp_path,
        sendgrid_api_key=SG_KEY,
        sendgrid_host=sendgrid.base_url,
        twilio_account_sid=TW_SID,
        twilio_auth_token=TW_TOKEN,
        twilio_from_number=FROM_NUMBER,
        twilio_base_url=twilio.base_url,
        twilio_webhook_base_url=API,
        sendgrid_event_public_key=_public_key(key),
    )
    async with running_worker(dev_server_env.client, sessions, base) as worker:
        settings = base.model_copy(update={"temporal_task_queue": worker.task_queue})
        app = build_app(settings, sessions, dev_server_env.client)
        email, sms = build_senders(settings)
        acts = NotificationActivities(sessions, email=email, sms=sms)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API) as http:
            yield Stack(http, acts, settings, key, sendgrid, twilio, dev_server_env.client)


async def _events(sessions: SessionFactory, event_id: str) -> int:
    async with sessions() as s:
        count = await s.scalar(
            select(func.count())
            .select_from(DeliveryEvent)
            .where(DeliveryEvent.event_id == event_id)
        )
        return int(count or 0)


async def _row(sessions: SessionFactory, key: str) -> NotificationRow:
    async with sessions() as s:
        row = await s.scalar(select(NotificationRow).where(NotificationRow.outbox_key == key))
        assert row is not None
        return row


def _texts_to(twilio: TwilioStandin, number: str) -> list[dict[str, Any]]:
    return [m for m in twilio.messages if m["to"] == number]


async def test_a_forged_event_is_refused_and_a_bounce_falls_back_to_sms_once(
    stack: Stack, sessions: SessionFactory, case_ref: str
) -> None:
    sent = await stack.send(case_ref, [Channel.EMAIL, Channel.SMS, Channel.IN_APP])
    assert sent["email"].status == "sent" and "sms" not in sent  # email first, SMS not needed
    email_key = f"{case_ref}:case_created:1:email"
    mail = stack.sendgrid.accepted[-1]
    assert mail.body["custom_args"]["idempotency_key"] == email_key
    bounce = {
        "email": CLIENT_EMAIL,
        "event": "bounce",
        "type": "bounce",
        "reason": "550 5.1.1 mailbox unavailable",
        "timestamp": int(datetime.now(UTC).timestamp()),
        "sg_event_id": f"ev-{case_ref}-1",
        "sg_message_id": f"{mail.message_id}.filter0001",
        **mail.body["custom_args"],
    }

    # forged: signed by another key, or signed and then altered
    body, headers = stack.signed([bounce])
    forged = ec.generate_private_key(ec.SECP256R1())
    bad = base64.b64encode(forged.sign(b"x" + body, ec.ECDSA(hashes.SHA256()))).decode()
    r = await stack.http.post(
        "/providers/sendgrid/events", content=body, headers={**headers, SIGNATURE: bad}
    )
    assert r.status_code == 403
    tampered = body.replace(b"bounce", b"opened", 1)
    r = await stack.http.post("/providers/sendgrid/events", content=tampered, headers=headers)
    assert r.status_code == 403
    r = await stack.http.post("/providers/sendgrid/events", content=body)
    assert r.status_code == 403
    assert await _events(sessions, bounce["sg_event_id"]) == 0
    assert (await _row(sessions, email_key)).delivery_state is None

    # valid: recorded, the email is marked bounced, and the client gets the SMS instead
    r = await stack.http.post("/providers/sendgrid/events", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 1, "recorded": 1, "fallbacks": 1}
    row = await _row(sessions, email_key)
    assert (row.delivery_state, row.bounced_at is not None) == ("bounced", True)
    done = await stack.fallback_done(email_key)
    assert done.sent_on == "sms"
    texts = _texts_to(stack.twilio, CLIENT_PHONE)
    assert len(texts) == 1 and case_ref in texts[0]["body"]
    sms_row = await _row(sessions, f"{case_ref}:case_created:1:sms")
    assert sms_row.status == "sent"

    # SendGrid repeats the event, and reports a second bounce: nothing more goes out
    again = {**bounce, "sg_event_id": f"ev-{case_ref}-2", "reason": "550 again"}
    for events in ([bounce], [bounce, again]):
        body, headers = stack.signed(events)
        r = await stack.http.post("/providers/sendgrid/events", content=body, headers=headers)
        assert r.status_code == 200 and r.json()["fallbacks"] == 0
    # no second fallback was started (fallbacks == 0 above), and the one that ran is done
    assert len(_texts_to(stack.twilio, CLIENT_PHONE)) == 1
    assert await _events(sessions, bounce["sg_event_id"]) == 1


async def test_opens_and_clicks_move_the_delivery_state_forward(
    stack: Stack, sessions: SessionFactory, case_ref: str
) -> None:
    await stack.send(case_ref, [Channel.EMAIL, Channel.IN_APP])
    mail = stack.sendgrid.accepted[-1]
    now = int(datetime.now(UTC).timestamp())
    events = [
        {
            "event": kind,
            "timestamp": now + i,
            "sg_event_id": f"{kind}-{case_ref}",
            "sg_message_id": mail.message_id,
            **mail.body["custom_args"],
        }
        for i, kind in enumerate(["processed", "delivered", "click", "open"])
    ]
    body, headers = stack.signed(events)
    r = await stack.http.post("/providers/sendgrid/events", content=body, headers=headers)
    assert r.json() == {"received": 4, "recorded": 4, "fallbacks": 0}
    row = await _row(sessions, f"{case_ref}:case_created:1:email")
    # the open after the click does not move it back
    assert row.delivery_state == "clicked"
    assert row.delivered_at and row.opened_at and row.clicked_at


async def test_an_undelivered_sms_falls_back_to_email_once(
    stack: Stack, sessions: SessionFactory, case_ref: str
) -> None:
    sent = await stack.send(case_ref, [Channel.SMS, Channel.EMAIL, Channel.IN_APP], urgent=True)
    assert sent["sms"].status == "sent" and "email" not in sent
    sms_key = f"{case_ref}:case_created:1:sms"
    text = stack.twilio.messages[-1]
    # the callback URL carries our key, so the callback finds its row
    assert text["status_callback"] == f"{API}/providers/twilio/status?{urlencode({'key': sms_key})}"
    path = f"/providers/twilio/status?{urlencode({'key': sms_key})}"
    form = {
        "MessageSid": text["sid"],
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "AccountSid": TW_SID,
        "To": CLIENT_PHONE,
    }
    r = await stack.twilio_post(path, form, token="not-our-token")
    assert r.status_code == 403
    assert await _events(sessions, f"{text['sid']}:undelivered") == 0
    mails_before = len(stack.sendgrid.accepted)
    for _ in range(2):  # Twilio retries callbacks; one fallback only
        r = await stack.twilio_post(path, form)
        assert r.status_code == 204, r.text
    assert (await stack.fallback_done(sms_key)).sent_on == "email"
    assert len(stack.sendgrid.accepted) == mails_before + 1
    assert stack.sendgrid.accepted[-1].to_email == CLIENT_EMAIL
    assert (await _row(sessions, sms_key)).delivery_state == "undelivered"


async def test_stop_stops_sms_until_start_and_help_answers(
    stack: Stack, sessions: SessionFactory, case_ref: str
) -> None:
    phone = "+447700900" + case_ref[-3:].translate(str.maketrans("ABCDEF", "123456"))
    sid = f"SM{case_ref.lower().replace('-', '')}"

    async def text(body: str, n: int) -> httpx.Response:
        form = {
            "MessageSid": f"{sid}{n}",
            "From": phone,
            "To": FROM_NUMBER,
            "Body": body,
            "AccountSid": TW_SID,
        }
        return await stack.twilio_post("/providers/twilio/sms", form)

    bad = await stack.http.post("/providers/twilio/sms", data={"From": phone, "Body": "STOP"})
    assert bad.status_code == 403
    r = await text("Stop", 1)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    async with sessions() as s:
        consent = await s.get(ChannelConsent, ("sms", phone))
        assert consent is not None and consent.opted_out and consent.keyword == "STOP"

    sent = await stack.send(case_ref, [Channel.SMS, Channel.IN_APP], phone=phone)
    assert sent["sms"].status == "skipped" and "STOP" in (sent["sms"].detail or "")
    assert _texts_to(stack.twilio, phone) == []

    help_reply = await text("HELP", 2)
    assert "Reply STOP" in help_reply.text and "<Message>" in help_reply.text
    await text("START", 3)
    sent = await stack.send(case_ref, [Channel.SMS, Channel.IN_APP], phone=phone, occurrence=2)
    assert sent["sms"].status == "sent"
    assert len(_texts_to(stack.twilio, phone)) == 1

    # a free-text reply from a number no case has is kept, for review: nothing is lost
    r = await text("who is this?", 4)
    assert r.status_code == 200
    async with sessions() as s:
        row = await s.scalar(select(InboundMessage).where(InboundMessage.provider_id == f"{sid}4"))
        assert row is not None and (row.status, row.body_text) == ("quarantined", "who is this?")


async def test_a_texted_reply_lands_on_the_senders_open_case(
    stack: Stack, sessions: SessionFactory, dev_server_env: Any
) -> None:
    ref = new_ref("TXT")
    phone = "+447700901" + str(abs(hash(ref)) % 1000).zfill(3)
    body = {
        "reference": ref,
        "case_type": "order_approval",
        "client": profile_json(phone=phone),
        "data": {"order_id": "PO-TXT", "order_value": 60000, "currency": "GBP", "items": 1},
    }
    r = await stack.http.post("/cases", json=body, headers={"X-API-Key": "dev-case-manager-key"})
    assert r.status_code == 201, r.text
    handle = dev_server_env.client.get_workflow_handle(r.json()["workflow_id"])
    try:
        form = {
            "MessageSid": f"SM{ref.lower()}",
            "From": phone,
            "To": FROM_NUMBER,
            "Body": "Can you deliver on Friday instead?",
            "AccountSid": TW_SID,
        }
        for _ in range(2):  # Twilio may post twice: one message on the case
            r = await stack.twilio_post("/providers/twilio/sms", form)
            assert r.status_code == 200, r.text

        async def said() -> list[CaseEvent]:
            async with sessions() as s:
                rows = await s.scalars(
                    select(CaseEvent).where(
                        CaseEvent.case_ref == ref, CaseEvent.kind == "client_message"
                    )
                )
                return list(rows)

        (event,) = await eventually(said, lambda rows: len(rows) >= 1, what="the reply")
        assert event.detail == {"text": "Can you deliver on Friday instead?", "channel": "sms"}
        async with sessions() as s:
            stored = await s.scalar(
                select(InboundMessage).where(InboundMessage.provider_id == form["MessageSid"])
            )
            assert stored is not None and (stored.status, stored.case_ref) == ("attached", ref)
    finally:
        await handle.terminate("test cleanup")
