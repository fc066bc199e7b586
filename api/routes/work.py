"""Work queues: what I hold, my team's queue, the team workload, and rebalancing.

Assigning work on one case is ``POST /cases/{ref}/assignment`` (in ``routes.cases``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.deps import AnyStaff, Caller, SessionDep, SettingsDep, TemporalDep, require
from api.responses import errors
from api.services import work as svc
from core.settings import Role
from schemas.contracts import MoveOutcome, RebalanceReport

router = APIRouter(prefix="/work", tags=["work"])

Lead = Annotated[Caller, Depends(require(Role.CASE_MANAGER))]
"""Case managers (and admins) run rebalancing and decide its proposals."""
ROLE_PATTERN = r"^[a-z][a-z0-9_]{0,59}$"
USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,119}$"


@router.get("/mine", response_model=svc.WorkList, responses=errors(401, 403, 422, 503))
async def my_work(session: SessionDep, caller: AnyStaff) -> svc.WorkList:
    """The cases and steps I hold, soonest due first (console users only: an API key is
    not a person)."""
    return await svc.held_by(session=session, username=svc.person_of(caller))


@router.get("/people/{username}", response_model=svc.WorkList, responses=errors(401, 403, 422, 503))
async def held_by(
    username: Annotated[str, Path(pattern=USER_PATTERN)],
    session: SessionDep,
    caller: AnyStaff,
) -> svc.WorkList:
    """What one person holds, soonest due first."""
    return await svc.held_by(session=session, username=username)


@router.get("/queue", response_model=svc.WorkList, responses=errors(401, 403, 422, 503))
async def team_queue(
    session: SessionDep,
    caller: AnyStaff,
    role: Annotated[str | None, Query(pattern=ROLE_PATTERN)] = None,
) -> svc.WorkList:
    """Open work nobody holds that ``role`` (default: mine) may take, soonest due first."""
    return await svc.queue(session=session, role=role or caller.role.value)


@router.get("/workload", response_model=svc.Workload, responses=errors(401, 403, 503))
async def workload(session: SessionDep, settings: SettingsDep, caller: AnyStaff) -> svc.Workload:
    """Per team: each person's open items, how many are near breach, and their oldest."""
    return await svc.workload(session=session, settings=settings, now=datetime.now(UTC))


@router.get("/rebalancing", response_model=svc.Rebalancing, responses=errors(401, 403, 503))
async def rebalancing(session: SessionDep, caller: AnyStaff) -> svc.Rebalancing:
    """The last rebalancing runs and the moves still waiting for a decision."""
    return await svc.rebalancing(session=session)


@router.post("/rebalance", response_model=RebalanceReport, responses=errors(401, 403, 503))
async def rebalance_now(
    temporal: TemporalDep, settings: SettingsDep, caller: Lead
) -> RebalanceReport:
    """Run rebalancing now, as the schedule does, and answer with what it moved and proposed."""
    return await svc.run_rebalancing(temporal=temporal, settings=settings, caller=caller)


MoveId = Annotated[int, Path(ge=1, le=2**62)]


@router.post(
    "/rebalancing/moves/{move_id}/apply",
    response_model=MoveOutcome,
    responses=errors(401, 403, 404, 409, 422, 503),
)
async def apply_move(
    move_id: MoveId, session: SessionDep, temporal: TemporalDep, caller: Lead
) -> MoveOutcome:
    """Make a proposed move (409 if the work has moved since, or it was decided already)."""
    return await svc.decide_proposal(
        session=session, temporal=temporal, move_id=move_id, caller=caller, apply=True
    )


@router.post(
    "/rebalancing/moves/{move_id}/dismiss",
    response_model=MoveOutcome,
    responses=errors(401, 403, 404, 409, 503),
)
async def dismiss_move(
    move_id: MoveId, session: SessionDep, temporal: TemporalDep, caller: Lead
) -> MoveOutcome:
    """Leave the work where it is."""
    return await svc.decide_proposal(
        session=session, temporal=temporal, move_id=move_id, caller=caller, apply=False
    )
