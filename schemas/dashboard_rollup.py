"""The dashboard roll-up's refresh: activity and workflow names, input and report. Pure pydantic,
so the workflow may import it (the refresh itself is ``store.dashboard_rollup``).

``refresh_dashboard_rollup``: recompute, from raw rows, every UTC day from the earliest one
whose facts changed (or ``since``) up to the watermark, then move the watermark to ``until``
(default: today, UTC; it never moves back). Idempotent: the days are deleted and written again
in one transaction.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

REFRESH_DASHBOARD_ROLLUP = "refresh_dashboard_rollup"
DASHBOARD_ROLLUP_WORKFLOW = "DashboardRollup"
DASHBOARD_ROLLUP_SCHEDULE_ID = "dashboard-rollup"


class RollupInput(BaseModel):
    since: date | None = Field(
        default=None, description="Recompute from this day too, even if nothing changed"
    )
    until: date | None = Field(
        default=None, description="Roll up the days before this one (None: today, UTC)"
    )


class RollupReport(BaseModel):
    refreshed: bool = Field(description="False: another refresh held the lock; nothing done")
    rolled_until: date | None = Field(
        default=None, description="The watermark: every day before it is rolled up"
    )
    first_day: date | None = Field(
        default=None, description="The first day recomputed (None: none needed it)"
    )
    days: int = Field(default=0, description="Days recomputed")
    dirty_days: int = Field(default=0, description="Changed days that were already rolled up")
    full: bool = Field(default=False, description="Built from the first day (no watermark yet)")
    stage_rows: int = Field(default=0, description="Running-total rows of stage visits written")
    case_rows: int = Field(default=0, description="Running-total rows of cases written")
    value_rows: int = Field(default=0, description="Distinct durations (by bucket) written")
    seconds: float = 0.0
    reason: str = ""
