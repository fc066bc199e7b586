"""Additional contacts of a case: who else at the client hears of it, and of what."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import CaseContact


async def active(session: AsyncSession, case_ref: str) -> list[CaseContact]:
    return list(
        await session.scalars(
            select(CaseContact)
            .where(CaseContact.case_ref == case_ref, CaseContact.removed_at.is_(None))
            .order_by(CaseContact.id)
        )
    )


async def receiving(session: AsyncSession, case_ref: str, milestone: str) -> list[CaseContact]:
    """The case's contacts whose role receives ``milestone``."""
    return [c for c in await active(session, case_ref) if milestone in (c.milestones or [])]


async def add(
    session: AsyncSession,
    *,
    case_ref: str,
    name: str,
    role: str,
    email: str | None,
    phone: str | None,
    milestones: list[str],
    by: str,
    at: datetime,
) -> CaseContact:
    contact = CaseContact(
        case_ref=case_ref,
        name=name,
        role=role,
        email=email,
        phone=phone,
        milestones=milestones,
        created_at=at,
        created_by=by,
    )
    session.add(contact)
    await session.flush()
    return contact


async def remove(session: AsyncSession, case_ref: str, contact_id: int, at: datetime) -> bool:
    contact = await session.get(CaseContact, contact_id)
    if contact is None or contact.case_ref != case_ref or contact.removed_at is not None:
        return False
    contact.removed_at = at
    return True
