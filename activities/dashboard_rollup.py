"""``refresh_dashboard_rollup``: bring the dashboard's daily roll-up up to date (the Temporal
Schedule ``dashboard-rollup`` starts one every ``DASHBOARD_ROLLUP_EVERY_MINUTES``; ``onboarding
dashboard rollup`` does the same by hand). Contract: ``schemas.dashboard_rollup``; the work:
``store.dashboard_rollup.refresh`` (one transaction, idempotent, one at a time)."""

from __future__ import annotations

from temporalio import activity

from schemas.dashboard_rollup import REFRESH_DASHBOARD_ROLLUP, RollupInput, RollupReport
from store.dashboard_rollup import refresh
from store.db import SessionFactory


class DashboardRollupActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @activity.defn(name=REFRESH_DASHBOARD_ROLLUP)
    async def refresh_rollup(self, inp: RollupInput) -> RollupReport:
        return await refresh(self._sessions, since=inp.since, until=inp.until)
