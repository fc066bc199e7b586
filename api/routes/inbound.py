"""Inbound email (SendGrid Inbound Parse) and the quarantine of messages from strangers.

``POST /inbound/email/{token}`` is SendGrid's: a secret path token (a wrong one is the router's
own 404, so the endpoint's existence is not revealed) plus HTTP basic auth (401). Past those,
every post is answered 200 once it is stored, attached or quarantined: SendGrid retries
anything else for three days. The quarantine routes are the JSON API for the people who review
what could not be attached.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from api.deps import Caller, CaseWorker, SessionDep, SettingsDep, TemporalDep, require
from api.responses import errors
from api.routes.documents import BlobStoreDep
from api.services import inbound_email as svc
from core.settings import Role
from schemas.case import CASE_REF_PATTERN
from schemas.text import Text

router = APIRouter(tags=["inbound"])

MAX_INBOUND_ID = 2**62
InboundId = Annotated[int, Path(ge=1, le=MAX_INBOUND_ID, description="Inbound message id")]
QuarantineReader = Annotated[Caller, Depends(require(Role.CASE_MANAGER, Role.OPERATOR))]

_STRING = {"type": "string"}
_JSON_TEXT = {"type": "string", "description": "JSON"}
INBOUND_PARSE_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "description": "SendGrid Inbound Parse (default mode, not raw)",
                    "properties": {
                        "from": _STRING,
                        "to": _STRING,
                        "cc": _STRING,
                        "subject": _STRING,
                        "text": _STRING,
                        "html": _STRING,
                        "headers": {"type": "string", "description": "Raw header block"},
                        "envelope": _JSON_TEXT,
                        "charsets": _JSON_TEXT,
                        "attachments": {"type": "string", "description": "How many files"},
                        "attachment-info": _JSON_TEXT,
                        "attachment1": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}


class AttachBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_ref: str = Field(pattern=CASE_REF_PATTERN, description="The case to attach it to")


class DismissBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text


@router.post(
    "/inbound/email/{token}",
    response_model=svc.InboundReceipt,
    responses=errors(
        401,
        404,
        503,
        described={
            401: "Missing or wrong basic auth (the user and password in the Parse URL)",
            404: "Not Found (a wrong token looks like no route at all)",
            503: "Postgres is unavailable; nothing was stored, and SendGrid retries",
        },
    ),
    openapi_extra=INBOUND_PARSE_FORM,
)
async def inbound_email(
    token: str,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    blobs: BlobStoreDep,
) -> svc.InboundReceipt:
    """SendGrid posts each email to our inbound domain here. The message is stored once per
    Message-ID, then attached to the case it names (a reply from the case's client or one of
    its contacts) or quarantined with the reason. Always 200 once stored."""
    if not svc.token_ok(settings, token):
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="Not Found")
    if not svc.basic_auth_ok(settings, request.headers.get("authorization")):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong basic auth",
            headers={"WWW-Authenticate": 'Basic realm="inbound"'},
        )
    try:
        form = await request.form(max_part_size=svc.MAX_FIELD_BYTES)
    except ClientDisconnect:
        raise
    except StarletteHTTPException as e:  # not multipart (no boundary, a broken part, ...)
        return await svc.store_unreadable(session, reason=str(e.detail))
    try:
        return await svc.receive_email(
            form=form, session=session, temporal=temporal, blobs=blobs, settings=settings
        )
    finally:
        await form.close()


@router.get(
    "/inbound/quarantine",
    response_model=svc.QuarantinePage,
    responses=errors(401, 403, 422, 503),
)
async def quarantine(
    session: SessionDep,
    _: QuarantineReader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> svc.QuarantinePage:
    """Inbound messages waiting for a person (sender not a contact, no case named, could not
    be attached), newest first."""
    return await svc.quarantine(session, limit=limit, offset=offset)


@router.post(
    "/inbound/{inbound_id}/attach",
    response_model=svc.InboundMessageView,
    responses=errors(
        400,
        401,
        403,
        404,
        409,
        422,
        503,
        described={
            404: "No such inbound message, or no such case",
            409: "The message is not quarantined, or the case takes no messages (closed)",
        },
    ),
)
async def attach(
    inbound_id: InboundId,
    body: AttachBody,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    blobs: BlobStoreDep,
    caller: CaseWorker,
) -> svc.InboundMessageView:
    """Attach a quarantined message to a case, as if its sender were the case's client: the
    reply goes on the case (reopening a resolved one per its case type) and its attachments
    become documents pending verification."""
    return await svc.attach(
        session=session,
        temporal=temporal,
        blobs=blobs,
        settings=settings,
        message_id=inbound_id,
        case_ref=body.case_ref,
        decided_by=caller.label,
    )


@router.post(
    "/inbound/{inbound_id}/dismiss",
    response_model=svc.InboundMessageView,
    responses=errors(
        400,
        401,
        403,
        404,
        409,
        422,
        503,
        described={404: "No such inbound message", 409: "The message is not quarantined"},
    ),
)
async def dismiss(
    inbound_id: InboundId,
    body: DismissBody,
    session: SessionDep,
    blobs: BlobStoreDep,
    caller: CaseWorker,
) -> svc.InboundMessageView:
    """Dismiss a quarantined message with a reason (kept for the record; its held attachments
    are deleted)."""
    return await svc.dismiss(
        session=session,
        blobs=blobs,
        message_id=inbound_id,
        reason=body.reason,
        decided_by=caller.label,
    )
