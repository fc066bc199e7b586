"""What providers tell us after a send: SendGrid's Event Webhook, Twilio's status callbacks
and inbound SMS (consent keywords and replies). Each is authenticated by the provider's own
signature, not an API key: a bad signature is 403 and nothing is recorded."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status
from pydantic import BaseModel
from sendgrid.helpers.eventwebhook import EventWebhookHeader

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.responses import errors
from api.services import provider_events as svc

router = APIRouter(prefix="/providers", tags=["providers"])

MAX_BODY = 2 * 1024 * 1024  # SendGrid batches up to ~1000 events; far below this


class EventsAnswer(BaseModel):
    received: int
    recorded: int
    fallbacks: int


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "the body is too large")
    return body


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.post("/sendgrid/events", response_model=EventsAnswer, responses=errors(400, 403, 413, 503))
async def sendgrid_events(
    request: Request,
    settings: SettingsDep,
    temporal: TemporalDep,
    signature: Annotated[str, Header(alias=EventWebhookHeader.SIGNATURE)] = "",
    timestamp: Annotated[str, Header(alias=EventWebhookHeader.TIMESTAMP)] = "",
) -> EventsAnswer:
    """SendGrid's Event Webhook (signed): delivered, open, click, bounce, dropped, spamreport
    are stored per message, once per ``sg_event_id``; a bounce or a drop sends the message on
    the client's next channel, once."""
    body = await _body(request)
    svc.verify_sendgrid(settings, body, signature, timestamp)
    done = await svc.sendgrid_events(
        sessions=request.app.state.sessions, temporal=temporal, settings=settings, body=body
    )
    return EventsAnswer(
        received=done.received, recorded=done.recorded, fallbacks=len(done.fallbacks)
    )


@router.post("/twilio/status", status_code=204, responses=errors(400, 403, 503))
async def twilio_status(
    request: Request,
    settings: SettingsDep,
    temporal: TemporalDep,
    key: Annotated[str | None, Query(max_length=200)] = None,
    signature: Annotated[str, Header(alias="X-Twilio-Signature")] = "",
) -> Response:
    """Twilio's status callback for an SMS we sent (signed); failed or undelivered falls
    back to email, once."""
    form = await _form(request)
    url = svc.public_url(settings, request.url.path, request.url.query, str(request.url))
    svc.verify_twilio(settings, url, form, signature)
    await svc.twilio_status(
        sessions=request.app.state.sessions,
        temporal=temporal,
        settings=settings,
        form=form,
        key=key,
    )
    return Response(status_code=204)


@router.post("/twilio/sms", responses=errors(400, 403, 503))
async def inbound_sms(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    signature: Annotated[str, Header(alias="X-Twilio-Signature")] = "",
) -> Response:
    """A text to our number (signed): STOP/START/HELP change SMS consent at once; anything
    else goes on the sender's open case, or to quarantine. Answers TwiML."""
    form = await _form(request)
    url = svc.public_url(settings, request.url.path, request.url.query, str(request.url))
    svc.verify_twilio(settings, url, form, signature)
    reply = await svc.inbound_sms(
        sessions=request.app.state.sessions,
        session=session,
        temporal=temporal,
        settings=settings,
        form=form,
        brand=settings.email_from_name,
    )
    return Response(content=reply.twiml(), media_type="application/xml")
