"""The SLA clock of one stage visit, over ``SlaTimerState`` (plain data in ``CaseState``).

Pure: no Temporal, no wall clock. Active time only counts while the clock runs (it stops while
paused, and while waiting on the client where the stage says so) and, with a business
calendar (``cal``), only inside working hours (``workcal``). The milestones come from the
pinned stage definition (``workflows.sla.milestones_for``) and the calendar from the pinned
input, so a replay computes the same deadlines; the workflow sleeps on one durable timer until
the next one. ``cal=None`` is 24/7: wall-clock time, as before calendars.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas import workcal
from schemas.calendar import PinnedCalendar
from schemas.case_state import SlaTimerState
from schemas.casetype import StageDef
from workflows.sla import Milestone, milestones_for

Cal = PinnedCalendar | None


def start(stage: StageDef, now: datetime) -> SlaTimerState:
    budget = stage.sla.total_seconds() if stage.sla is not None else None
    return SlaTimerState(started_at=now, budget_seconds=budget, running_since=now)


def active(clock: SlaTimerState, now: datetime, cal: Cal = None) -> timedelta:
    banked = timedelta(seconds=clock.active_before_seconds)
    if clock.running_since is None:
        return banked
    return banked + workcal.working(cal, clock.running_since, now)


def paused(clock: SlaTimerState, now: datetime) -> timedelta:
    banked = timedelta(seconds=clock.paused_seconds)
    if clock.stopped_since is None:
        return banked
    return banked + (now - clock.stopped_since)


def stop(clock: SlaTimerState, now: datetime, cal: Cal = None) -> None:
    if clock.running_since is None:
        return
    clock.active_before_seconds += workcal.working(cal, clock.running_since, now).total_seconds()
    clock.running_since, clock.stopped_since = None, now


def resume(clock: SlaTimerState, now: datetime) -> None:
    if clock.running_since is not None:
        return
    if clock.stopped_since is not None:
        clock.paused_seconds += (now - clock.stopped_since).total_seconds()
    clock.stopped_since, clock.running_since = None, now


def remaining(clock: SlaTimerState, now: datetime, cal: Cal = None) -> timedelta | None:
    """Budget left (working time with a calendar); negative once overdue."""
    if clock.budget_seconds is None:
        return None
    return timedelta(seconds=clock.budget_seconds) - active(clock, now, cal)


def due_at(clock: SlaTimerState, now: datetime, cal: Cal = None) -> datetime | None:
    """When the budget runs out if the clock keeps running (None: no budget, or stopped)."""
    left = remaining(clock, now, cal)
    if left is None or clock.running_since is None:
        return None
    return workcal.add(cal, now, left) if left > timedelta(0) else now + left


def breach_at(clock: SlaTimerState, cal: Cal = None) -> datetime | None:
    """When the budget runs out if the clock keeps running: fixed while it runs (it only
    moves when the clock stops or starts), so it can be stored. None when stopped."""
    if clock.budget_seconds is None or clock.running_since is None:
        return None
    left = timedelta(seconds=clock.budget_seconds - clock.active_before_seconds)
    if left <= timedelta(0):
        return clock.running_since + left
    return workcal.add(cal, clock.running_since, left)


def next_deadline(
    clock: SlaTimerState, stage: StageDef, now: datetime, cal: Cal = None
) -> datetime | None:
    """Instant of the next unfired milestone, if the clock keeps running: with a calendar,
    exactly when that much more working time has passed."""
    if clock.running_since is None:
        return None
    spent = active(clock, now, cal)
    for m in milestones_for(stage):
        if m.key not in clock.fired:
            return workcal.add(cal, now, m.at_active - spent)
    return None


def due(clock: SlaTimerState, stage: StageDef, now: datetime, cal: Cal = None) -> list[Milestone]:
    """Unfired milestones whose time has come, oldest first; marks them fired."""
    spent = active(clock, now, cal)
    ready = [m for m in milestones_for(stage) if m.key not in clock.fired and m.at_active <= spent]
    clock.fired.extend(m.key for m in ready)
    return ready


def outcome(clock: SlaTimerState) -> str:
    """How the visit did against its SLA: none / met / warned / breached."""
    if clock.budget_seconds is None:
        return "none"
    if "breach" in clock.fired:
        return "breached"
    if any(k.startswith("warning") for k in clock.fired) or clock.state == "at_risk":
        return "warned"
    return "met"
