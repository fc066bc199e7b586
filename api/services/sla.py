"""``GET /cases/{ref}/sla``: the current stage's SLA, explained at the moment of asking.

The workflow hands over its raw clock (``sla_clock`` query); the figures are computed here
with the same pure functions the workflow uses (``schemas.workcal``), at the real
current time. Used + left always add up to the budget.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.deps import Caller
from api.services import engine as eng
from schemas import workcal
from schemas.calendar import PinnedCalendar
from schemas.case import CaseStatus
from schemas.sla_explain import (
    Deadline,
    SkippedDay,
    SlaClockView,
    SlaExplanation,
    StoppedInterval,
)

SLA_CLOCK = "sla_clock"  # query


async def explain(
    *, session: AsyncSession, temporal: Client, ref: str, caller: Caller | None
) -> SlaExplanation:
    """404 unknown case, 403 stage access, 409 frozen/draft/no SLA, 503 Temporal away."""
    row = await eng.load_case(session=session, ref=ref, caller=caller)
    await session.rollback()  # hold no connection while Temporal is awaited
    return await explain_row(temporal=temporal, row=row)


async def explain_row(*, temporal: Client, row: eng.CaseRow) -> SlaExplanation:
    """``explain`` for a case row already loaded (and access-checked)."""
    ref = row.ref
    if not row.is_engine:
        raise eng.not_for_frozen(row, "SLA explanation")
    if row.status == CaseStatus.DRAFT.value:
        raise eng.conflict(f"case {ref} has not started yet; retry POST /cases to start it")
    handle = temporal.get_workflow_handle(row.workflow_id)
    async with eng.temporal_errors(), asyncio.timeout(eng.QUERY_DEADLINE.total_seconds()):
        raw = await handle.query(SLA_CLOCK, rpc_timeout=eng.QUERY_TIMEOUT)
    if raw is None:
        raise eng.conflict(f"case {ref} has no SLA clock in its current stage")
    return figures(ref, SlaClockView.model_validate(raw), datetime.now(UTC))


def _minutes(delta: timedelta) -> float:
    return round(delta.total_seconds() / 60, 2)


def figures(ref: str, view: SlaClockView, now: datetime) -> SlaExplanation:
    """The explanation of one clock at ``now`` (pure: tested without a server)."""
    cal: PinnedCalendar | None = view.calendar
    used = timedelta(seconds=view.active_before_seconds)
    if view.running_since is not None:
        used += workcal.working(cal, view.running_since, now)
    budget = timedelta(seconds=view.budget_seconds) if view.budget_seconds is not None else None
    left = budget - used if budget is not None else None
    running = view.running_since is not None
    due_at = None
    if left is not None and running:
        due_at = workcal.add(cal, now, left) if left > timedelta(0) else now + left
    stopped = [
        StoppedInterval(
            start=p.paused_at, end=p.resumed_at, why=f"paused: {p.reason}" if p.reason else "paused"
        )
        for p in view.pauses
    ]
    stopped_total = timedelta(seconds=view.paused_seconds)
    if view.stopped_since is not None:
        stopped_total += now - view.stopped_since
        if not any(p.resumed_at is None for p in view.pauses):
            stopped.append(
                StoppedInterval(start=view.stopped_since, end=None, why="waiting on the client")
            )
    deadlines = []
    for m in view.milestones:
        at = timedelta(seconds=m.at_working_seconds)
        when = None
        if not m.fired and running:
            when = workcal.add(cal, now, at - used) if at > used else now
        deadlines.append(
            Deadline(
                key=m.key,
                kind=m.kind,
                level=m.level,
                target=m.target,
                at_working_minutes=_minutes(at),
                fired=m.fired,
                due_at=when,
            )
        )
    horizon = max(d for d in (due_at, now) if d is not None)
    skipped = (
        [
            SkippedDay(day=s.day, why=s.why)
            for s in workcal.skipped_days(cal, view.entered_at, horizon)
        ]
        if cal is not None
        else []
    )
    return SlaExplanation(
        case_ref=ref,
        stage=view.stage,
        stage_title=view.stage_title,
        computed_at=now,
        calendar=cal.name if cal else None,
        time_zone=cal.time_zone if cal else None,
        entered_at=view.entered_at,
        running=running,
        budget_minutes=_minutes(budget) if budget is not None else None,
        working_minutes_used=_minutes(used),
        working_minutes_left=_minutes(left) if left is not None else None,
        due_at=due_at,
        stopped=stopped,
        stopped_minutes=_minutes(stopped_total),
        skipped=skipped,
        deadlines=deadlines,
    )
