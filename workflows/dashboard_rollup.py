"""DashboardRollup: refresh the dashboard's daily roll-up (a Temporal Schedule starts one
hourly by default, workers/schedules.py). One activity: the refresh is SQL work in one
transaction; the workflow gives it retries, a history operators can read, and the schedule's
overlap policy."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from schemas.dashboard_rollup import (
        DASHBOARD_ROLLUP_WORKFLOW,
        REFRESH_DASHBOARD_ROLLUP,
        RollupInput,
        RollupReport,
    )


@workflow.defn(name=DASHBOARD_ROLLUP_WORKFLOW)
class DashboardRollupWorkflow:
    @workflow.run
    async def run(self, inp: RollupInput) -> RollupReport:
        return await workflow.execute_activity(
            REFRESH_DASHBOARD_ROLLUP,
            inp,
            # a first build over years of history takes minutes; an hourly refresh, seconds
            start_to_close_timeout=timedelta(minutes=30),
            retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=30)),
            result_type=RollupReport,
        )
