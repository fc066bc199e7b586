"""Rebalancing runs and their moves in Postgres: what each run moved or proposed, for the
console's workload page and the audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.engine_commands import AssignWork
from schemas.rebalance import Move
from store.models import RebalanceMove, RebalanceRun


async def start_run(
    session: AsyncSession, *, run_key: str, trigger: str, requested_by: str, at: datetime
) -> tuple[RebalanceRun, bool]:
    """The run's row, and whether it is new (an activity retry finds the one it made)."""
    inserted = await session.execute(
        insert(RebalanceRun)
        .values(run_key=run_key, trigger=trigger, requested_by=requested_by, started_at=at)
        .on_conflict_do_nothing(constraint="uq_rebalance_runs_run_key")
        .returning(RebalanceRun.id)
    )
    new = inserted.first() is not None
    run = await session.scalar(select(RebalanceRun).where(RebalanceRun.run_key == run_key))
    assert run is not None
    return run, new


async def record_moves(
    session: AsyncSession, run: RebalanceRun, moves: list[Move], *, auto: set[str], at: datetime
) -> None:
    if not moves:
        return
    await session.execute(
        insert(RebalanceMove)
        .values(
            [
                {
                    "run_id": run.id,
                    "team": m.team,
                    "case_ref": m.case_ref,
                    "item": m.item,
                    "title": m.title[:200],
                    "from_person": m.from_person,
                    "to_person": m.to_person,
                    "status": "planned" if m.team in auto else "proposed",
                    "detail": m.reason,
                    "created_at": at,
                }
                for m in moves
            ]
        )
        .on_conflict_do_nothing(constraint="uq_rebalance_moves_run_item")
    )


async def moves_of(session: AsyncSession, run_id: int) -> list[RebalanceMove]:
    return list(
        await session.scalars(
            select(RebalanceMove).where(RebalanceMove.run_id == run_id).order_by(RebalanceMove.id)
        )
    )


async def mark(
    session: AsyncSession,
    move_id: int,
    status: str,
    *,
    at: datetime,
    by: str | None = None,
    detail: str | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "decided_at": at, "decided_by": by}
    if detail is not None:
        values["detail"] = detail[:2000]
    await session.execute(update(RebalanceMove).where(RebalanceMove.id == move_id).values(values))


async def finish_run(
    session: AsyncSession, run_id: int, *, at: datetime, teams: dict[str, Any]
) -> RebalanceRun:
    moves = await moves_of(session, run_id)
    counts = {s: sum(m.status == s for m in moves) for s in ("moved", "proposed", "refused")}
    await session.execute(
        update(RebalanceRun)
        .where(RebalanceRun.id == run_id)
        .values(
            finished_at=at,
            moved=counts["moved"],
            proposed=counts["proposed"],
            refused=counts["refused"],
            teams=teams,
        )
    )
    run = await session.get(RebalanceRun, run_id, populate_existing=True)
    assert run is not None
    return run


async def recent_runs(session: AsyncSession, limit: int = 10) -> list[RebalanceRun]:
    return list(
        await session.scalars(
            select(RebalanceRun).order_by(RebalanceRun.started_at.desc()).limit(limit)
        )
    )


async def open_proposals(session: AsyncSession, limit: int = 100) -> list[RebalanceMove]:
    return list(
        await session.scalars(
            select(RebalanceMove)
            .where(RebalanceMove.status == "proposed")
            .order_by(RebalanceMove.created_at.desc(), RebalanceMove.id)
            .limit(limit)
        )
    )


async def get_move(session: AsyncSession, move_id: int) -> RebalanceMove | None:
    return await session.get(RebalanceMove, move_id)


def command_for(move: RebalanceMove, *, actor: str) -> AssignWork:
    """The case's ``assign`` update that makes ``move``, only while the work is still held by
    the person it moves from (a stale plan is refused by the case, never applied)."""
    return AssignWork(
        actor=actor,
        role="admin",
        element=None if move.item == "case" else move.item,
        assignee=move.to_person,
        assignee_team=move.team,
        reason=move.detail or "rebalancing",
        if_held_by=move.from_person,
        via="rebalancing",
    )
