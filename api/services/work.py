"""Work queues over HTTP and in the console: assignment, My work, team queues, the team
workload, and rebalancing runs.

Assignment is the case workflow's ``assign`` update (it validates and audits); this module
turns a caller and a username into that command. Lists come from the read model
(``store.work``); who may hold what is ``schemas.work``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from fastapi import HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.deps import Caller
from api.services import cases as svc
from api.services import engine as eng
from core.settings import Role, Settings
from schemas.case import AssignmentBody
from schemas.contracts import (
    ASSIGN,
    REBALANCE_WORKFLOW,
    MoveOutcome,
    RebalanceInput,
    RebalanceReport,
)
from schemas.engine_commands import AssignWork, CommandResult
from schemas.rebalance import Person
from schemas.work import WorkItem
from store import rebalancing as runs
from store import work

MANUAL_RUN_TIMEOUT = timedelta(seconds=60)


def directory(settings: Settings) -> dict[str, Person]:
    """Console users by username: the people work can be assigned to."""
    return {
        username: Person(username=username, name=user.name, team=user.role.value)
        for username, user in settings.console_users.items()
    }


def unprocessable(detail: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


def person_of(caller: Caller) -> str:
    if caller.username is None:
        raise unprocessable(
            "an API key is not a person: sign in to the console to take work, or name an assignee"
        )
    return caller.username


async def assign(
    *,
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    ref: str,
    caller: Caller,
    body: AssignmentBody,
) -> CommandResult:
    """Take, assign, reassign or release (the case decides: 403 / 409 / 422)."""
    assignee = person_of(caller) if body.take else body.assignee
    team = None
    if assignee is not None:
        person = directory(settings).get(assignee)
        if person is None:
            raise unprocessable(f"{assignee!r} is not a console user")
        team = person.team
    return await svc.engine_command(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        name=ASSIGN,
        model=AssignWork,
        element=body.element,
        assignee=assignee,
        assignee_team=team,
        reason=body.reason,
    )


# ----------------------------------------------------------------------------- lists
class WorkList(BaseModel):
    items: list[WorkItem]


async def held_by(*, session: AsyncSession, username: str) -> WorkList:
    """Everything one person holds, by due time."""
    return WorkList(items=await work.held_by(session, [username]))


async def queue(*, session: AsyncSession, role: str) -> WorkList:
    """Open work nobody holds that ``role`` may take, by due time."""
    return WorkList(items=await work.unassigned_for(session, role))


class PersonLoad(BaseModel):
    username: str
    name: str
    open_items: int = 0
    near_breach: int = Field(default=0, description="Held items near or past their SLA")
    oldest_since: datetime | None = Field(default=None, description="Opened, oldest held item")
    oldest: str | None = Field(default=None, description="That item: case ref and step")


class TeamLoad(BaseModel):
    team: str
    threshold: int
    auto: bool
    unassigned: int = Field(default=0, description="Open items in the team's queue")
    people: list[PersonLoad]


class Workload(BaseModel):
    at: datetime
    teams: list[TeamLoad]


async def workload(*, session: AsyncSession, settings: Settings, now: datetime) -> Workload:
    """Per team (role): each person's open items, near-breach count and oldest item."""
    people = directory(settings)
    held = await work.held_by(session, list(people))
    mine: dict[str, list[WorkItem]] = defaultdict(list)
    for item in held:
        if item.assignee is not None:
            mine[item.assignee].append(item)
    teams: dict[str, list[PersonLoad]] = defaultdict(list)
    for username, person in sorted(people.items()):
        if person.team == Role.OPERATOR.value:
            continue  # operators watch; they hold no work
        items = mine.get(username, [])
        oldest = min(items, key=lambda i: i.opened_at or now, default=None)
        teams[person.team].append(
            PersonLoad(
                username=username,
                name=person.name,
                open_items=len(items),
                near_breach=sum(i.at_risk for i in items),
                oldest_since=oldest.opened_at if oldest else None,
                oldest=(f"{oldest.case_ref} · {oldest.title}" if oldest else None),
            )
        )
    out = []
    for team, loads in sorted(teams.items()):
        policy = settings.rebalance_team(team)
        waiting = await work.unassigned_for(session, team)
        out.append(
            TeamLoad(
                team=team,
                threshold=policy.threshold,
                auto=policy.auto,
                unassigned=len(waiting),
                people=sorted(loads, key=lambda p: (-p.near_breach, -p.open_items, p.username)),
            )
        )
    return Workload(at=now, teams=out)


# ----------------------------------------------------------------------------- rebalancing
async def run_rebalancing(
    *, temporal: Client, settings: Settings, caller: Caller
) -> RebalanceReport:
    """Run rebalancing now (the same workflow the schedule starts) and wait for its report."""
    async with eng.temporal_errors():
        handle = await temporal.start_workflow(
            REBALANCE_WORKFLOW,
            RebalanceInput(trigger="manual", requested_by=caller.label),
            id=f"workload-rebalancing-manual-{uuid.uuid4().hex[:12]}",
            task_queue=settings.temporal_task_queue,
            execution_timeout=timedelta(minutes=30),
            result_type=RebalanceReport,
        )
        return await handle.result(rpc_timeout=MANUAL_RUN_TIMEOUT)


class RunView(BaseModel):
    id: int
    trigger: str
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    moved: int
    proposed: int
    refused: int


class Rebalancing(BaseModel):
    runs: list[RunView]
    proposals: list[MoveOutcome]


def _outcome(move: object) -> MoveOutcome:
    return MoveOutcome.model_validate(move, from_attributes=True)


async def rebalancing(*, session: AsyncSession) -> Rebalancing:
    """The last runs, and the moves proposed that nobody has applied or dismissed yet."""
    recent = await runs.recent_runs(session)
    proposals = await runs.open_proposals(session)
    return Rebalancing(
        runs=[RunView.model_validate(r, from_attributes=True) for r in recent],
        proposals=[_outcome(m) for m in proposals],
    )


async def decide_proposal(
    *,
    session: AsyncSession,
    temporal: Client,
    move_id: int,
    caller: Caller,
    apply: bool,
) -> MoveOutcome:
    """Apply a proposed move (the case's ``assign``, only if the work is still where the
    proposal found it) or dismiss it. 404 unknown, 409 already decided or gone stale."""
    move = await runs.get_move(session, move_id)
    if move is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="no such proposal")
    if move.status != "proposed":
        raise eng.conflict(f"this proposal was already {move.status}")
    now = datetime.now(UTC)
    if not apply:
        await runs.mark(session, move.id, "dismissed", at=now, by=caller.label)
        await session.commit()
        await session.refresh(move)
        return _outcome(move)
    # read what we need before load_case's rollback expires the loaded move
    move_id, cmd = move.id, runs.command_for(move, actor=caller.label)
    row = await eng.commandable_case(session=session, ref=move.case_ref, caller=caller)
    await session.commit()  # never hold a DB session while awaiting Temporal
    try:
        await eng.engine_update(temporal=temporal, row=row, name=ASSIGN, arg=cmd, caller=caller)
    except HTTPException as refused:
        if refused.status_code != status.HTTP_409_CONFLICT:
            raise
        await runs.mark(session, move_id, "stale", at=now, by=caller.label, detail=refused.detail)
        await session.commit()
        raise
    await runs.mark(session, move_id, "applied", at=now, by=caller.label)
    await session.commit()
    applied = await runs.get_move(session, move_id)
    assert applied is not None
    await session.refresh(applied)
    return _outcome(applied)
