"""What providers tell us after a send, and what clients text back.

- SendGrid's Event Webhook: signed with SendGrid's ECDSA key; each event is stored once
  (``sg_event_id``) and moves its message's delivery state; a bounce or a drop sends the
  message on the client's next channel, once (a ``DeliveryFallback`` workflow per message).
- Twilio's status callbacks: signed with the auth token (``RequestValidator``); a failed or
  undelivered SMS falls back to email the same way.
- Inbound SMS: STOP/START/HELP change the number's SMS consent at once (audited on its cases);
  anything else is the client writing on their case (the case's ``client_message`` update), or
  is quarantined when the number belongs to no case.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, status
from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from twilio.request_validator import RequestValidator

from api.deps import Caller
from api.services import cases as svc
from api.services import engine as eng
from core.settings import Role, Settings
from schemas.contracts import DELIVERY_FALLBACK_WORKFLOW, fallback_workflow_id
from schemas.engine_commands import ClientMessage
from schemas.notifications import FallbackInput
from store import delivery
from store.db import SessionFactory

log = logging.getLogger(__name__)

SENDGRID_STATES = {
    "delivered": "delivered",
    "open": "opened",
    "click": "clicked",
    "bounce": "bounced",
    "dropped": "dropped",
    "spamreport": "spam",
}
"""SendGrid event -> our delivery state (processed, deferred, unsubscribe: recorded only)."""
TWILIO_STATES = {"delivered": "delivered", "failed": "failed", "undelivered": "undelivered"}
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP", "OPTIN"})
HELP_WORDS = frozenset({"HELP", "INFO"})
HELP_REPLY = (
    "{brand}: replies to this number reach your case team. Reply STOP to stop texts, "
    "START to receive them again."
)


def forbidden(detail: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=detail)


# ----------------------------------------------------------------------------- SendGrid
def verify_sendgrid(settings: Settings, body: bytes, signature: str, timestamp: str) -> None:
    """403 unless SendGrid signed exactly this body (no key configured: always 403)."""
    key = settings.sendgrid_event_public_key
    if not key or not signature or not timestamp:
        raise forbidden("missing or unverifiable event signature")
    try:
        verifier = EventWebhook(key)
        valid = verifier.verify_signature(body.decode("utf-8"), signature, timestamp)
    except (ValueError, TypeError, UnicodeDecodeError):
        valid = False
    if not valid:
        raise forbidden("the event signature does not match")


def _when(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return datetime.now(UTC)


@dataclass
class EventsRecorded:
    received: int
    recorded: int
    fallbacks: list[str]


async def sendgrid_events(
    *, sessions: SessionFactory, temporal: Client, settings: Settings, body: bytes
) -> EventsRecorded:
    """Store a verified batch of events; start a fallback for each message that bounced."""
    try:
        events = json.loads(body)
    except json.JSONDecodeError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not JSON") from e
    if not isinstance(events, list):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "expected a JSON array of events")
    recorded, fallbacks = 0, []
    for event in events[:1000]:
        if not isinstance(event, dict) or not event.get("sg_event_id") or not event.get("event"):
            continue
        kind = str(event["event"])
        key = str(event.get("idempotency_key") or "") or None
        sg_message_id = str(event.get("sg_message_id") or "").split(".")[0] or None
        at = _when(event.get("timestamp"))
        async with sessions.begin() as session:
            row = await delivery.message(session, outbox_key=key, provider_message_id=sg_message_id)
            new = await delivery.record_event(
                session,
                provider="sendgrid",
                event_id=str(event["sg_event_id"]),
                event=kind,
                occurred_at=at,
                outbox_key=row.outbox_key if row else key,
                notification_id=row.id if row else None,
                detail={
                    k: event[k]
                    for k in ("reason", "status", "type", "url", "response", "attempt")
                    if k in event
                },
            )
            state = SENDGRID_STATES.get(kind)
            if new and row is not None and state is not None:
                delivery.apply_state(row, state, at)
            gave_up = row is not None and state in delivery.GIVEN_UP and row.audience == "client"
            outbox_key = row.outbox_key if row else None
        recorded += new
        if gave_up and outbox_key:  # also on a repeat: the start itself is idempotent
            reason = f"email {kind}: {event.get('reason') or event.get('type') or kind}"
            if await start_fallback(temporal, settings, outbox_key, reason):
                fallbacks.append(outbox_key)
    return EventsRecorded(received=len(events), recorded=recorded, fallbacks=fallbacks)


async def start_fallback(
    temporal: Client, settings: Settings, outbox_key: str, reason: str
) -> bool:
    """Start the message's fallback unless one ran already (one per message, ever)."""
    async with eng.temporal_errors():
        try:
            await temporal.start_workflow(
                DELIVERY_FALLBACK_WORKFLOW,
                FallbackInput(outbox_key=outbox_key, reason=reason[:500]),
                id=fallback_workflow_id(outbox_key),
                task_queue=settings.temporal_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            return False
    log.info("delivery fallback started key=%s", outbox_key)
    return True


# ----------------------------------------------------------------------------- Twilio
def verify_twilio(settings: Settings, url: str, form: dict[str, str], signature: str) -> None:
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    if not token or not signature:
        raise forbidden("missing or unverifiable request signature")
    if not RequestValidator(token).validate(url, form, signature):
        raise forbidden("the request signature does not match")


def public_url(settings: Settings, path: str, query: str, fallback: str) -> str:
    """The URL Twilio signed: the configured public base (behind a proxy, our own address
    differs from what Twilio called), else this request's own URL."""
    base = settings.twilio_webhook_base_url
    if not base:
        return fallback
    return base.rstrip("/") + path + (f"?{query}" if query else "")


async def twilio_status(
    *,
    sessions: SessionFactory,
    temporal: Client,
    settings: Settings,
    form: dict[str, str],
    key: str | None,
) -> bool:
    """Store one status callback; a failed or undelivered SMS falls back (to email)."""
    sid, state_name = form.get("MessageSid", ""), form.get("MessageStatus", "")
    if not sid or not state_name:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "MessageSid and MessageStatus needed")
    at = datetime.now(UTC)
    async with sessions.begin() as session:
        row = await delivery.message(session, outbox_key=key, provider_message_id=sid)
        new = await delivery.record_event(
            session,
            provider="twilio",
            event_id=f"{sid}:{state_name}",
            event=state_name,
            occurred_at=at,
            outbox_key=row.outbox_key if row else key,
            notification_id=row.id if row else None,
            detail={k: form[k] for k in ("ErrorCode", "ErrorMessage") if k in form},
        )
        state = TWILIO_STATES.get(state_name)
        if new and row is not None and state is not None:
            delivery.apply_state(row, state, at)
        gave_up = row is not None and state in delivery.GIVEN_UP and row.audience == "client"
        outbox_key = row.outbox_key if row else None
    if gave_up and outbox_key:
        reason = f"sms {state_name} (error {form.get('ErrorCode') or 'unknown'})"
        await start_fallback(temporal, settings, outbox_key, reason)
    return new


@dataclass
class SmsReply:
    """What we answer Twilio: TwiML with an optional reply text."""

    text: str | None = None

    def twiml(self) -> str:
        from xml.sax.saxutils import escape

        if not self.text:
            return '<?xml version="1.0" encoding="UTF-8"?><Response/>'
        return (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
            f"{escape(self.text)}</Message></Response>"
        )


def keyword(body: str) -> str | None:
    word = body.strip().upper().rstrip(".!")
    if word in STOP_WORDS:
        return "STOP"
    if word in START_WORDS:
        return "START"
    if word in HELP_WORDS:
        return "HELP"
    return None


async def inbound_sms(
    *,
    sessions: SessionFactory,
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    form: dict[str, str],
    brand: str,
) -> SmsReply:
    """A text from a client: a consent keyword, a reply on their case, or quarantined."""
    sid, sender, body = form.get("MessageSid", ""), form.get("From", ""), form.get("Body", "")
    if not sid or not sender:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "MessageSid and From are needed")
    now = datetime.now(UTC)
    word = keyword(body)
    cases = await delivery.cases_of_phone(session, sender)
    await session.commit()  # never hold a session while awaiting Temporal
    if word is not None:
        async with sessions.begin() as tx:
            stored = await delivery.store_inbound(
                tx,
                channel="sms",
                provider_id=sid,
                sender=sender,
                recipient=form.get("To"),
                body=body[:2000],
                status="consent",
                reason=word,
                case_ref=None,
                at=now,
            )
            if stored is not None and word in ("STOP", "START"):
                await delivery.set_consent(
                    tx,
                    address=sender,
                    opted_out=word == "STOP",
                    keyword=word,
                    source=f"twilio:{sid}",
                    at=now,
                )
                for case in cases:  # audited on every case of that number
                    await delivery.audit(
                        tx,
                        case_ref=case.ref,
                        key=f"sms-consent-{sid}",
                        kind="sms_consent",
                        actor="client",
                        detail={"keyword": word, "opted_out": word == "STOP"},
                        at=now,
                    )
        log.info("inbound sms keyword=%s cases=%d", word, len(cases))
        return SmsReply(HELP_REPLY.format(brand=brand) if word == "HELP" else None)
    live = [c for c in cases if c.engine == "case" and c.status not in ("closed", "cancelled")]
    target = live[0] if live else None
    async with sessions.begin() as tx:
        stored = await delivery.store_inbound(
            tx,
            channel="sms",
            provider_id=sid,
            sender=sender,
            recipient=form.get("To"),
            body=body[:2000],
            status="attached" if target else "quarantined",
            reason=None if target else "the number belongs to no open case",
            case_ref=target.ref if target else None,
            at=now,
        )
    if stored is None or target is None:  # a repeat, or nobody to give it to
        return SmsReply()
    client = Caller(role=Role.CLIENT_APP, key_id="sms", username=None, name=None)
    await svc.engine_command(
        session=session,
        temporal=temporal,
        ref=target.ref,
        caller=client,
        name="client_message",
        model=ClientMessage,
        text=(body.strip() or "(empty text)")[:2000],
        channel="sms",
    )
    return SmsReply()
