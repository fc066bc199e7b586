"""Additional contacts of a case: ``/cases/{ref}/contacts``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from api.deps import AnyStaff, CaseTypesDep, ClientOrManager, SessionDep
from api.responses import errors
from api.routes.cases import Ref
from api.services import contacts as svc
from schemas.case import ContactView, NewContact

router = APIRouter(prefix="/cases", tags=["contacts"])

ContactId = Annotated[int, Path(ge=1, le=2**62)]


@router.post(
    "/{ref}/contacts",
    response_model=ContactView,
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409, 422, 503),
)
async def add_contact(
    ref: Ref, body: NewContact, session: SessionDep, registry: CaseTypesDep, caller: ClientOrManager
) -> ContactView:
    """Add someone at the client in a role (legal, finance, ...): they receive the client
    milestones the case type gives that role (``contact_roles``), or the ``milestones`` named
    here. 422 for a role without milestones or a staff notice."""
    return await svc.add(session=session, registry=registry, ref=ref, caller=caller, body=body)


@router.get(
    "/{ref}/contacts", response_model=list[ContactView], responses=errors(401, 403, 404, 503)
)
async def list_contacts(ref: Ref, session: SessionDep, caller: AnyStaff) -> list[ContactView]:
    """The case's additional contacts and what each receives."""
    return await svc.listed(session=session, ref=ref, caller=caller)


@router.delete(
    "/{ref}/contacts/{contact_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404, 409, 503),
)
async def remove_contact(
    ref: Ref, contact_id: ContactId, session: SessionDep, caller: ClientOrManager
) -> Response:
    """They hear nothing more of the case (kept for the audit)."""
    await svc.remove(session=session, ref=ref, caller=caller, contact_id=contact_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
