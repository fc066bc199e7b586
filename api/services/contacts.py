"""Additional contacts of a case (ServiceNow's "additional contacts"): someone at the client
in a role (legal, finance, ...) who receives exactly the milestones the case type gives that
role (``contact_roles``), or the ones named when they were added."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import HTTPException, status
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import Caller
from api.services import engine as eng
from notifications.milestones import CLIENT_MESSAGES
from playbooks.registry import CaseTypeRegistry
from schemas.case import ContactView, NewContact
from store import contacts as store

CLIENT_MILESTONES = {m.value for m in CLIENT_MESSAGES}


def _unprocessable(detail: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


def _view(contact: object) -> ContactView:
    return ContactView.model_validate(contact, from_attributes=True)


async def add(
    *,
    session: AsyncSession,
    registry: CaseTypeRegistry,
    ref: str,
    caller: Caller,
    body: NewContact,
) -> ContactView:
    """Add a contact (404 unknown case, 409 closed, 422 a role or milestone that does not fit)."""
    row = await eng.load_case(session=session, ref=ref, caller=caller)
    eng.require_commandable(row)
    case_type = registry.get(row.case_type) if row.case_type in registry else None
    roles = case_type.contact_roles if case_type is not None else {}
    if body.milestones is not None:
        milestones = list(dict.fromkeys(body.milestones))
    elif body.role in roles:
        milestones = list(roles[body.role])
    else:
        known = ", ".join(sorted(roles)) or "none"
        raise _unprocessable(
            f"role {body.role!r} has no milestones in case type {row.case_type} "
            f"(its contact roles: {known}); name the milestones"
        )
    wrong = [m for m in milestones if m not in CLIENT_MILESTONES]
    if wrong:
        raise _unprocessable(
            f"not client milestones: {', '.join(wrong)} "
            f"(known: {', '.join(sorted(CLIENT_MILESTONES))})"
        )
    contact = await store.add(
        session,
        case_ref=ref,
        name=body.name,
        role=body.role,
        email=str(body.email) if body.email else None,
        phone=body.phone,
        milestones=milestones,
        by=caller.label,
        at=datetime.now(UTC),
    )
    view = _view(contact)
    await session.commit()
    return view


async def listed(*, session: AsyncSession, ref: str, caller: Caller) -> list[ContactView]:
    await eng.load_case(session=session, ref=ref, caller=caller)
    return [_view(c) for c in await store.active(session, ref)]


async def remove(*, session: AsyncSession, ref: str, caller: Caller, contact_id: int) -> None:
    row = await eng.load_case(session=session, ref=ref, caller=caller)
    eng.require_commandable(row)
    if not await store.remove(session, ref, contact_id, datetime.now(UTC)):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"case {ref} has no contact {contact_id}"
        )
    await session.commit()
