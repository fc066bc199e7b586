"""Notification use-cases behind the HTTP routes: the outbox log, the client inbox,
callback tasks and contact preferences."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, computed_field
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement
from temporalio.client import Client
from temporalio.service import RPCError

from api.services import engine as eng
from api.services.cases import running_case
from schemas.client import ContactPreferences
from schemas.text import Actor
from store.models import CallbackTaskRow, Case, NotificationRow

log = logging.getLogger(__name__)

PREFERENCES_SIGNAL = eng.FROZEN_PREFERENCES
"""``update_preferences``, sent by name (no workflow class imported). The frozen onboarding
workflow handles it; an engine case buffers it until a handler of that name exists, and the
stored profile is what the read model and new messages use."""


# ---------------------------------------------------------------------- views
class NotificationView(BaseModel):
    """One outbox row: what was sent, when, how, and what became of it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    milestone: str
    channel: str
    audience: str
    recipient: str | None
    subject: str | None
    status: str = Field(
        description="sent | local_outbox (stored, not delivered externally) | fallback | "
        "rejected | failed (will retry) | sending | unconfirmed (staff must follow up) | queued"
    )
    provider: str | None
    provider_message_id: str | None
    error: str | None = Field(description="the provider's error, or why the row is not sent")
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    read_at: datetime | None


class NotificationList(BaseModel):
    items: list[NotificationView]


class InboxItem(BaseModel):
    """An in-app notification as the client portal shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    milestone: str
    subject: str | None
    body_text: str
    body_html: str | None
    created_at: datetime
    read_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def read(self) -> bool:
        return self.read_at is not None


class Inbox(BaseModel):
    items: list[InboxItem]
    unread: int


class CallbackView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    stage: str
    assignee_role: str
    due_at: datetime
    status: str = Field(description="open | done")
    created_at: datetime
    done_at: datetime | None
    done_by: str | None


class CallbackList(BaseModel):
    items: list[CallbackView]


class CallbackDone(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    actor: Actor  # clean, bounded text (schemas/text.py)


class PreferencesUpdated(BaseModel):
    reference: str
    contact_preferences: ContactPreferences
    workflow_notified: bool = Field(
        description="false when the case's workflow could not be signalled (e.g. it has "
        "just closed); the preferences are stored either way"
    )


# ---------------------------------------------------------------------- queries
async def _require_case(session: AsyncSession, ref: str) -> Case:
    case = await session.get(Case, ref)
    if case is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"no case {ref}")
    return case


async def list_notifications(*, session: AsyncSession, ref: str) -> NotificationList:
    """Every outbox row of the case (client and staff), newest first."""
    await _require_case(session, ref)
    rows = (
        await session.scalars(
            select(NotificationRow)
            .where(NotificationRow.case_ref == ref)
            .order_by(NotificationRow.created_at.desc(), NotificationRow.id.desc())
        )
    ).all()
    return NotificationList(items=[NotificationView.model_validate(r) for r in rows])


def _inbox_filter(ref: str) -> tuple[ColumnElement[bool], ...]:
    return (
        NotificationRow.case_ref == ref,
        NotificationRow.channel == "in_app",
        NotificationRow.audience == "client",
    )


async def inbox(*, session: AsyncSession, ref: str) -> Inbox:
    """The client's in-app notifications, newest first, with the unread count."""
    await _require_case(session, ref)
    rows = (
        await session.scalars(
            select(NotificationRow)
            .where(*_inbox_filter(ref))
            .order_by(NotificationRow.created_at.desc(), NotificationRow.id.desc())
        )
    ).all()
    unread = await session.scalar(
        select(func.count())
        .select_from(NotificationRow)
        .where(*_inbox_filter(ref), NotificationRow.read_at.is_(None))
    )
    return Inbox(items=[InboxItem.model_validate(r) for r in rows], unread=unread or 0)


async def mark_read(*, session: AsyncSession, ref: str, notification_id: int) -> InboxItem:
    """Idempotent: the first read time is kept. 404 unless the id is this case's in-app row."""
    await _require_case(session, ref)
    await session.execute(
        update(NotificationRow)
        .where(
            NotificationRow.id == notification_id,
            *_inbox_filter(ref),
            NotificationRow.read_at.is_(None),
        )
        .values(read_at=datetime.now(UTC))
    )
    await session.commit()
    row = await session.scalar(
        select(NotificationRow).where(NotificationRow.id == notification_id, *_inbox_filter(ref))
    )
    if row is None:
        raise HTTPException(
            status_code=status.HTTP_404_NOT_FOUND,
            detail=f"case {ref} has no in-app notification {notification_id}",
        )
    return InboxItem.model_validate(row)


async def list_callbacks(*, session: AsyncSession, ref: str) -> CallbackList:
    """Callback tasks owed to the client, by due time."""
    await _require_case(session, ref)
    rows = (
        await session.scalars(
            select(CallbackTaskRow)
            .where(CallbackTaskRow.case_ref == ref)
            .order_by(CallbackTaskRow.due_at, CallbackTaskRow.id)
        )
    ).all()
    return CallbackList(items=[CallbackView.model_validate(r) for r in rows])


async def complete_callback(
    *, session: AsyncSession, ref: str, callback_id: int, actor: str
) -> CallbackView:
    """Idempotent: a second "done" keeps who did it first, and when."""
    await _require_case(session, ref)
    await session.execute(
        update(CallbackTaskRow)
        .where(
            CallbackTaskRow.id == callback_id,
            CallbackTaskRow.case_ref == ref,
            CallbackTaskRow.status != "done",
        )
        .values(status="done", done_at=datetime.now(UTC), done_by=actor)
    )
    await session.commit()
    row = await session.scalar(
        select(CallbackTaskRow).where(
            CallbackTaskRow.id == callback_id, CallbackTaskRow.case_ref == ref
        )
    )
    if row is None:
        raise HTTPException(
            status_code=status.HTTP_404_NOT_FOUND,
            detail=f"case {ref} has no callback task {callback_id}",
        )
    return CallbackView.model_validate(row)


async def update_preferences(
    *, session: AsyncSession, temporal: Client, ref: str, prefs: ContactPreferences
) -> PreferencesUpdated:
    """Store the preferences in the read model, then tell the running case.

    Stored first: the workflow only needs them while it runs, and if the signal cannot be
    delivered (the case has just closed, Temporal is briefly away) the change is not lost.
    """
    handle = await running_case(session=session, temporal=temporal, ref=ref)  # 404 / 409
    case = await _require_case(session, ref)
    profile = dict(case.profile or {})
    profile["contact_preferences"] = prefs.model_dump(mode="json")
    case.profile = profile  # a new dict, so SQLAlchemy sees the JSONB change
    await session.commit()
    notified = True
    try:
        await handle.signal(PREFERENCES_SIGNAL, prefs)
    except RPCError as exc:
        notified = False
        log.warning(
            "preferences stored but workflow not signalled case=%s status=%s error=%s",
            ref,
            exc.status.name if exc.status else None,
            exc.message,
        )
    return PreferencesUpdated(reference=ref, contact_preferences=prefs, workflow_notified=notified)
