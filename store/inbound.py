"""Inbound messages in Postgres: claim one per provider message id, find the case and its
contacts, and move a message between ``attaching``, ``attached``, ``quarantined`` and
``dismissed``.

A row is written before anything else happens to the message, so a message is never dropped
silently: either it ends attached, or it waits in the quarantine for a person.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Case, CaseContact, CaseEvent, InboundMessage

ATTACHING = "attaching"
ATTACHED = "attached"
QUARANTINED = "quarantined"
DISMISSED = "dismissed"

STALE_ATTACHING = timedelta(minutes=2)
"""An ``attaching`` row older than this was left by a process that died halfway: it counts as
quarantined (a person may attach or dismiss it) and a repeat post may take it over."""


def _reviewable(now: datetime) -> Any:
    """Quarantined rows, and attaching rows whose attempt died (see ``STALE_ATTACHING``)."""
    return or_(
        InboundMessage.status == QUARANTINED,
        (InboundMessage.status == ATTACHING) & (InboundMessage.decided_at < now - STALE_ATTACHING),
    )


async def by_provider_id(
    session: AsyncSession, *, channel: str, provider_id: str
) -> InboundMessage | None:
    return await session.scalar(
        select(InboundMessage)
        .where(InboundMessage.channel == channel, InboundMessage.provider_id == provider_id)
        .execution_options(populate_existing=True)
    )


async def claim(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """Insert the message; None when its (channel, provider id) is already stored (a repeat
    post, or a concurrent one that won)."""
    inserted = await session.scalar(
        insert(InboundMessage)
        .values(**values)
        .on_conflict_do_nothing(constraint="uq_inbound_messages_channel_id")
        .returning(InboundMessage.id)
    )
    return int(inserted) if inserted is not None else None


async def take_over(
    session: AsyncSession, *, message_id: int, now: datetime, decided_by: str | None
) -> bool:
    """Claim a reviewable message for attaching (status ``attaching``); False when it is not
    reviewable (attached, dismissed, or being attached right now by someone else)."""
    taken = await session.scalar(
        update(InboundMessage)
        .where(InboundMessage.id == message_id, _reviewable(now))
        .values(status=ATTACHING, decided_at=now, decided_by=decided_by)
        .returning(InboundMessage.id)
    )
    return taken is not None


async def take_over_stale(session: AsyncSession, *, message_id: int, now: datetime) -> bool:
    """A repeat post of a message whose first attempt died while ``attaching``: claim it again
    (True). Any other stored message is a plain repeat (False)."""
    taken = await session.scalar(
        update(InboundMessage)
        .where(
            InboundMessage.id == message_id,
            InboundMessage.status == ATTACHING,
            InboundMessage.decided_at < now - STALE_ATTACHING,
        )
        .values(decided_at=now)
        .returning(InboundMessage.id)
    )
    return taken is not None


async def finish(
    session: AsyncSession,
    *,
    message_id: int,
    status: str,
    reason: str | None,
    case_ref: str | None,
    attachments: list[dict[str, Any]],
    decided_at: datetime | None,
    decided_by: str | None,
    **values: Any,
) -> None:
    """The message's outcome (``values``: more columns, e.g. a taken-over row's fresh copy)."""
    await session.execute(
        update(InboundMessage)
        .where(InboundMessage.id == message_id)
        .values(
            status=status,
            reason=reason,
            case_ref=case_ref,
            attachments=attachments,
            decided_at=decided_at,
            decided_by=decided_by,
            **values,
        )
    )


async def release(
    session: AsyncSession,
    *,
    message_id: int,
    decided_at: datetime | None,
    decided_by: str | None,
) -> None:
    """An attach attempt failed: back to the quarantine as it was."""
    await session.execute(
        update(InboundMessage)
        .where(InboundMessage.id == message_id, InboundMessage.status == ATTACHING)
        .values(status=QUARANTINED, decided_at=decided_at, decided_by=decided_by)
    )


async def dismiss(
    session: AsyncSession, *, message_id: int, reason: str, now: datetime, decided_by: str
) -> InboundMessage | None:
    """Dismiss a reviewable message (its quarantine reason is kept, the dismissal's added);
    None when it is not reviewable."""
    done = await session.scalar(
        update(InboundMessage)
        .where(InboundMessage.id == message_id, _reviewable(now))
        .values(
            status=DISMISSED,
            reason=func.concat(func.coalesce(InboundMessage.reason, ""), "; dismissed: ", reason),
            decided_at=now,
            decided_by=decided_by,
        )
        .returning(InboundMessage.id)
    )
    if done is None:
        return None
    return await get(session, message_id)


async def get(session: AsyncSession, message_id: int) -> InboundMessage | None:
    return await session.get(InboundMessage, message_id, populate_existing=True)


async def quarantine_page(
    session: AsyncSession, *, now: datetime, limit: int, offset: int
) -> tuple[list[InboundMessage], int]:
    """The messages waiting for a person, newest first (ties by id, so pages never overlap)."""
    where = _reviewable(now)
    total = await session.scalar(select(func.count()).select_from(InboundMessage).where(where))
    rows = await session.scalars(
        select(InboundMessage)
        .where(where)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def cases_by_refs(session: AsyncSession, refs: Iterable[str]) -> dict[str, Case]:
    """Cases named by ``refs``, keyed by upper-cased ref. Each ref is looked up as written and
    upper-cased (mail clients change the case of addresses), so the primary key index serves."""
    wanted = {r for ref in refs for r in (ref, ref.upper())}
    if not wanted:
        return {}
    rows = await session.scalars(
        select(Case).where(Case.ref.in_(wanted)).execution_options(populate_existing=True)
    )
    return {case.ref.upper(): case for case in rows}


async def is_contact(session: AsyncSession, *, case: Case, address: str) -> bool:
    """Whether ``address`` (lower case) is the case's client or one of its active contacts."""
    if case.client_email and case.client_email.strip().lower() == address:
        return True
    found = await session.scalar(
        select(CaseContact.id)
        .where(
            CaseContact.case_ref == case.ref,
            CaseContact.removed_at.is_(None),
            func.lower(func.trim(CaseContact.email)) == address,
        )
        .limit(1)
    )
    return found is not None


async def record_case_event(
    session: AsyncSession,
    *,
    case_ref: str,
    event_key: str,
    kind: str,
    actor: str,
    detail: dict[str, Any],
    at: datetime,
) -> None:
    """An audit event written by the API (cases of the frozen workflow, which has no
    ``client_message`` update); idempotent on (case, event key)."""
    await session.execute(
        insert(CaseEvent)
        .values(
            case_ref=case_ref,
            event_key=event_key,
            kind=kind,
            actor=actor,
            detail=detail,
            occurred_at=at,
        )
        .on_conflict_do_nothing(constraint="uq_case_events_case_key")
    )
