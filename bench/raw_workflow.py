"""The raw-Temporal baseline for bench/case_cost_bench.py: six no-op activities in a row.

Its own module, free of side effects, so it runs in the same workflow sandbox as ours."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_noop")
async def noop(stage: str) -> str:
    return stage


@workflow.defn(name="RawSixStageWorkflow")
class RawSixStages:
    @workflow.run
    async def run(self, ref: str) -> str:
        for stage in ("ack", "docs", "compliance", "account", "final", "welcome"):
            await workflow.execute_activity(
                noop, stage, start_to_close_timeout=timedelta(seconds=10)
            )
        return ref
