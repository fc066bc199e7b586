"""RebalanceWorkload: one workload rebalancing run (the Temporal Schedule starts one every
15 minutes by default; the console starts one by hand).

The work is one activity: it reads who holds what, plans the moves (``schemas.rebalance``),
records them, and moves work for teams that rebalance automatically by sending each case its
``assign`` update (the case's validator has the last word). A workflow around it gives the
run a history operators can read in the Temporal UI, retries, and the schedule's overlap
policy.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from schemas.contracts import (
        REBALANCE,
        REBALANCE_WORKFLOW,
        RebalanceActivityInput,
        RebalanceInput,
        RebalanceReport,
    )


@workflow.defn(name=REBALANCE_WORKFLOW)
class RebalanceWorkflow:
    @workflow.run
    async def run(self, inp: RebalanceInput) -> RebalanceReport:
        info = workflow.info()
        return await workflow.execute_activity(
            REBALANCE,
            RebalanceActivityInput(
                trigger=inp.trigger,
                requested_by=inp.requested_by,
                run_key=f"{info.workflow_id}/{info.run_id}",
                at=workflow.now(),
            ),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(minutes=1)),
            result_type=RebalanceReport,
        )
