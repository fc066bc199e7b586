"""Provider events in Postgres: what SendGrid and Twilio told us about a message after the
send, channel consent (STOP/START), and inbound SMS."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import (
    Case,
    CaseEvent,
    ChannelConsent,
    DeliveryEvent,
    InboundMessage,
    NotificationRow,
)

GIVEN_UP = frozenset({"bounced", "dropped", "failed", "undelivered"})
"""Delivery states after which the message goes out on the next channel."""
FINAL = GIVEN_UP | {"spam"}
_RANK = {None: 0, "processed": 0, "deferred": 0, "delivered": 1, "opened": 2, "clicked": 3}


async def record_event(
    session: AsyncSession,
    *,
    provider: str,
    event_id: str,
    event: str,
    occurred_at: datetime,
    outbox_key: str | None,
    notification_id: int | None,
    detail: dict[str, Any],
) -> bool:
    """Store one provider event; False when it was stored before (providers repeat)."""
    inserted = await session.execute(
        insert(DeliveryEvent)
        .values(
            provider=provider,
            event_id=event_id[:200],
            event=event[:30],
            occurred_at=occurred_at,
            outbox_key=outbox_key,
            notification_id=notification_id,
            detail=detail,
        )
        .on_conflict_do_nothing(constraint="uq_delivery_events_provider_event")
        .returning(DeliveryEvent.id)
    )
    return inserted.first() is not None


async def message(
    session: AsyncSession, *, outbox_key: str | None, provider_message_id: str | None = None
) -> NotificationRow | None:
    """The outbox row an event is about (by our key, else the provider's id), locked."""
    if outbox_key:
        row = await session.scalar(
            select(NotificationRow)
            .where(NotificationRow.outbox_key == outbox_key)
            .with_for_update()
        )
        if row is not None:
            return row
    if provider_message_id:
        return await session.scalar(
            select(NotificationRow)
            .where(NotificationRow.provider_message_id == provider_message_id)
            .with_for_update()
            .limit(1)
        )
    return None


def apply_state(row: NotificationRow, state: str, at: datetime) -> None:
    """Move a message's delivery state forward (an open after a click changes nothing; a
    bounce or a failure is final)."""
    if state == "delivered":
        row.delivered_at = row.delivered_at or at
    elif state == "opened":
        row.opened_at = row.opened_at or at
        row.delivered_at = row.delivered_at or at  # opened implies delivered
    elif state == "clicked":
        row.clicked_at = row.clicked_at or at
        row.opened_at = row.opened_at or at
        row.delivered_at = row.delivered_at or at
    elif state in GIVEN_UP:
        row.bounced_at = row.bounced_at or at
    if row.delivery_state in FINAL:
        return
    if state in FINAL or _RANK.get(state, 0) > _RANK.get(row.delivery_state, 0):
        row.delivery_state = state


async def set_consent(
    session: AsyncSession, *, address: str, opted_out: bool, keyword: str, source: str, at: datetime
) -> None:
    stmt = insert(ChannelConsent).values(
        channel="sms",
        address=address,
        opted_out=opted_out,
        keyword=keyword,
        source=source,
        updated_at=at,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["channel", "address"],
            set_={
                "opted_out": stmt.excluded.opted_out,
                "keyword": stmt.excluded.keyword,
                "source": stmt.excluded.source,
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )


async def opted_out(session: AsyncSession, address: str) -> bool:
    row = await session.get(ChannelConsent, ("sms", address))
    return bool(row is not None and row.opted_out)


async def cases_of_phone(session: AsyncSession, phone: str) -> list[Case]:
    """Cases whose client has this number, open ones first, newest first."""
    rows = await session.scalars(
        select(Case)
        .where(Case.client_phone == phone)
        .order_by(Case.closed_at.is_not(None), Case.created_at.desc())
        .limit(50)
    )
    return list(rows)


async def store_inbound(
    session: AsyncSession,
    *,
    channel: str,
    provider_id: str,
    sender: str,
    recipient: str | None,
    body: str,
    status: str,
    reason: str | None,
    case_ref: str | None,
    at: datetime,
) -> InboundMessage | None:
    """The inbound message's row; None when this provider id was stored before."""
    inserted = await session.execute(
        insert(InboundMessage)
        .values(
            channel=channel,
            provider_id=provider_id[:300],
            sender=sender[:320],
            recipient=(recipient or "")[:320] or None,
            body_text=body,
            status=status,
            reason=reason,
            case_ref=case_ref,
            received_at=at,
        )
        .on_conflict_do_nothing(constraint="uq_inbound_messages_channel_id")
        .returning(InboundMessage.id)
    )
    new_id = inserted.scalar()
    return None if new_id is None else await session.get(InboundMessage, new_id)


async def audit(
    session: AsyncSession,
    *,
    case_ref: str,
    key: str,
    kind: str,
    actor: str,
    detail: dict[str, Any],
    at: datetime,
) -> None:
    """A case timeline row written from outside the workflow (consent is per number, not
    per case, so no workflow owns it)."""
    await session.execute(
        insert(CaseEvent)
        .values(
            case_ref=case_ref,
            event_key=key,
            kind=kind,
            actor=actor,
            detail=detail,
            occurred_at=at,
        )
        .on_conflict_do_nothing(constraint="uq_case_events_case_key")
    )
