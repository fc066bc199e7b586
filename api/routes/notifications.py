"""/cases/{ref}/notifications, inbox, callbacks and contact preferences."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict

from api.deps import Caller, CaseWorker, SessionDep, TemporalDep, require
from api.responses import errors
from api.services import notifications as svc
from core.settings import Role
from schemas.case import CASE_REF_PATTERN
from schemas.client import ContactPreferences
from schemas.text import Actor

router = APIRouter(prefix="/cases", tags=["notifications"])

Ref = Annotated[str, Path(pattern=CASE_REF_PATTERN, description="Case reference")]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Row id (a Postgres bigint)")]
"""An id out of bigint range is a 422, not an overflow in the database."""
Staff = Annotated[Caller, Depends(require(Role.CASE_MANAGER, Role.OPERATOR))]
"""Who may see the delivery log and callbacks: internal people only."""
ClientOrManager = Annotated[Caller, Depends(require(Role.CLIENT_APP, Role.CASE_MANAGER))]
"""The client's portal (through the client app) and the case manager acting for them."""
READ = errors(401, 403, 404, 422, 503)


class CallbackDoneBody(BaseModel):
    """Body of ``POST /cases/{ref}/callbacks/{id}/done``: who made the call (one clean line)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    actor: Actor


@router.get("/{ref}/notifications", response_model=svc.NotificationList, responses=READ)
async def list_notifications(ref: Ref, session: SessionDep, _: Staff) -> svc.NotificationList:
    """What was sent, when and how (channel, provider, provider id), its status and any
    fallback or error; newest first."""
    return await svc.list_notifications(session=session, ref=ref)


@router.get("/{ref}/inbox", response_model=svc.Inbox, responses=READ)
async def get_inbox(ref: Ref, session: SessionDep, _: ClientOrManager) -> svc.Inbox:
    """The client's in-app notifications, newest first, with the unread count."""
    return await svc.inbox(session=session, ref=ref)


@router.post(
    "/{ref}/inbox/{notification_id}/read",
    response_model=svc.InboxItem,
    responses=errors(
        401, 403, 404, 422, 503, described={404: "No such case, or no such notification of it"}
    ),
)
async def mark_read(
    ref: Ref, notification_id: RowId, session: SessionDep, _: ClientOrManager
) -> svc.InboxItem:
    """Mark one in-app notification read (idempotent; 404 for another case's id)."""
    return await svc.mark_read(session=session, ref=ref, notification_id=notification_id)


@router.get("/{ref}/callbacks", response_model=svc.CallbackList, responses=READ)
async def list_callbacks(ref: Ref, session: SessionDep, _: Staff) -> svc.CallbackList:
    """Phone callbacks owed to the client, by due time."""
    return await svc.list_callbacks(session=session, ref=ref)


@router.post(
    "/{ref}/callbacks/{callback_id}/done",
    response_model=svc.CallbackView,
    responses=errors(
        400, 401, 403, 404, 422, 503, described={404: "No such case, or no such callback of it"}
    ),
)
async def callback_done(
    ref: Ref, callback_id: RowId, body: CallbackDoneBody, session: SessionDep, _: CaseWorker
) -> svc.CallbackView:
    """Record that the callback happened (idempotent: the first completion is kept)."""
    return await svc.complete_callback(
        session=session, ref=ref, callback_id=callback_id, actor=body.actor
    )


@router.put(
    "/{ref}/preferences",
    response_model=svc.PreferencesUpdated,
    responses=errors(400, 401, 403, 404, 409, 422, 503, described={409: "The case is closed"}),
)
async def put_preferences(
    ref: Ref,
    body: ContactPreferences,
    session: SessionDep,
    temporal: TemporalDep,
    _: ClientOrManager,
) -> svc.PreferencesUpdated:
    """Replace the client's contact preferences; the running case uses them from its next
    message on. 409 for a closed case."""
    return await svc.update_preferences(session=session, temporal=temporal, ref=ref, prefs=body)
