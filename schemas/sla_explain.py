"""``GET /cases/{ref}/sla``: every deadline of the current stage, explained.

The workflow answers the ``sla_clock`` query with the raw material (``SlaClockView``: its
clock, the pinned calendar, the stage's milestones, this visit's pauses); the API computes the
figures at the moment of the request (``api.services.sla``), so they are current even when the
workflow has been idle for hours.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from schemas.calendar import PinnedCalendar


class ClockMilestone(BaseModel):
    key: str
    kind: str  # warning / predictive / breach / escalation
    at_working_seconds: float
    level: int = 0
    target: str | None = None
    fired: bool = False


class ClockPause(BaseModel):
    paused_at: datetime
    resumed_at: datetime | None = None
    reason: str = ""


class SlaClockView(BaseModel):
    """The ``sla_clock`` query's answer (None when the stage has no SLA clock)."""

    stage: str
    stage_title: str
    entered_at: datetime
    budget_seconds: float | None
    active_before_seconds: float
    running_since: datetime | None
    paused_seconds: float
    stopped_since: datetime | None
    calendar: PinnedCalendar | None = None
    milestones: list[ClockMilestone] = Field(default_factory=list)
    pauses: list[ClockPause] = Field(default_factory=list)


class Deadline(BaseModel):
    key: str
    kind: str
    level: int = 0
    target: str | None = None
    at_working_minutes: float = Field(description="Working minutes into the budget")
    fired: bool
    due_at: datetime | None = Field(
        default=None, description="When it falls due if the clock keeps running (not fired)"
    )


class StoppedInterval(BaseModel):
    start: datetime
    end: datetime | None
    why: str = Field(description="paused (with the reason) or waiting on the client")


class SkippedDay(BaseModel):
    day: date
    why: str = Field(description="weekend, holiday: <name>, or no working hours")


class SlaExplanation(BaseModel):
    case_ref: str
    stage: str
    stage_title: str
    computed_at: datetime
    calendar: str | None = Field(description="None: 24/7, wall-clock time")
    time_zone: str | None = None
    entered_at: datetime
    running: bool = Field(description="False while paused or waiting on the client")
    budget_minutes: float | None
    working_minutes_used: float
    working_minutes_left: float | None = Field(description="Negative once overdue")
    due_at: datetime | None
    stopped: list[StoppedInterval] = Field(
        default_factory=list, description="When the clock did not run"
    )
    stopped_minutes: float
    skipped: list[SkippedDay] = Field(
        default_factory=list, description="Days from entry to the due time that count nothing"
    )
    deadlines: list[Deadline] = Field(default_factory=list)
