"""The rebalancing run's activity: plan from the read model, record, move.

Moves for a team set to ``auto`` are made at once, each as the case's own ``assign`` update
(``if_held_by`` the person it moves from, so a plan that went stale is refused, not applied);
other teams get proposals a person applies or dismisses in the console. Idempotent per run:
a retry finds the run's recorded moves and only sends those still ``planned``, each with a
stable update id.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from core.settings import Settings
from schemas.contracts import (
    ASSIGN,
    REBALANCE,
    MoveOutcome,
    RebalanceActivityInput,
    RebalanceReport,
)
from schemas.engine_commands import AssignWork, CommandResult
from schemas.rebalance import Person, TeamPolicy, plan
from store import rebalancing as runs
from store import work
from store.db import SessionFactory
from store.models import RebalanceMove
from store.rebalancing import command_for

ACTOR = "rebalancing"


def people_of(settings: Settings) -> list[Person]:
    return [
        Person(username=username, name=user.name, team=user.role.value)
        for username, user in settings.console_users.items()
    ]


def policies_of(settings: Settings, teams: set[str]) -> dict[str, TeamPolicy]:
    return {
        team: TeamPolicy(
            threshold=settings.rebalance_team(team).threshold,
            auto=settings.rebalance_team(team).auto,
        )
        for team in teams
    }


async def send_move(
    client: Client, workflow_id: str, move: RebalanceMove, cmd: AssignWork, update_id: str
) -> tuple[str, str]:
    """(status, detail): ``moved``, or ``refused`` with the case's reason."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        result = await handle.execute_update(ASSIGN, cmd, id=update_id, result_type=CommandResult)
    except WorkflowUpdateFailedError as e:
        cause = e.cause
        why = cause.message if isinstance(cause, ApplicationError) else str(e)
        return "refused", why
    except RPCError as e:
        return "refused", f"the case did not take it: {e.message}"
    return "moved", result.message


class RebalanceActivities:
    def __init__(self, sessions: SessionFactory, settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    @activity.defn(name=REBALANCE)
    async def rebalance(self, inp: RebalanceActivityInput) -> RebalanceReport:
        people = people_of(self._settings)
        policies = policies_of(self._settings, {p.team for p in people})
        auto = {team for team, policy in policies.items() if policy.auto}
        async with self._sessions.begin() as session:
            run, new = await runs.start_run(
                session,
                run_key=inp.run_key,
                trigger=inp.trigger,
                requested_by=inp.requested_by,
                at=inp.at,
            )
            teams = dict(run.teams or {})
            if new:
                held = await work.held_by(session, [p.username for p in people])
                planned = plan(people, held, policies)
                await runs.record_moves(session, run, planned.moves, auto=auto, at=inp.at)
                teams = {k: v.model_dump() for k, v in planned.teams.items()}
            moves = await runs.moves_of(session, run.id)
        workflow_ids = await work.workflow_ids(self._sessions, {m.case_ref for m in moves})
        client = activity.client()
        for move in moves:
            if move.status != "planned":
                continue
            activity.heartbeat(move.id)
            status, detail = await send_move(
                client,
                workflow_ids[move.case_ref],
                move,
                command_for(move, actor=ACTOR),
                f"rebalance-{run.id}-{move.id}",
            )
            async with self._sessions.begin() as session:
                await runs.mark(
                    session,
                    move.id,
                    status,
                    at=datetime.now(UTC),
                    by=ACTOR,
                    detail=None if status == "moved" else detail,
                )
            move.status = status
            if status != "moved":
                move.detail = detail
        async with self._sessions.begin() as session:
            done = await runs.finish_run(session, run.id, at=datetime.now(UTC), teams=teams)
        activity.logger.info(
            "rebalancing run=%s moved=%s proposed=%s refused=%s",
            run.id,
            done.moved,
            done.proposed,
            done.refused,
        )
        return RebalanceReport(
            run_id=run.id,
            moved=done.moved,
            proposed=done.proposed,
            refused=done.refused,
            teams=teams,
            moves=[
                MoveOutcome(
                    id=m.id,
                    case_ref=m.case_ref,
                    item=m.item,
                    title=m.title,
                    team=m.team,
                    from_person=m.from_person,
                    to_person=m.to_person,
                    status=m.status,
                    detail=m.detail,
                )
                for m in moves
            ],
        )
