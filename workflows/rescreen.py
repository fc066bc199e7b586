"""Sanctions monitoring's workflows (docs/sanctions-monitoring.md).

``RescreenClients`` (id ``rescreen-<list version>``): every client with an onboarding case
that is open, resolved or closed as completed is screened again, a batch at a time
(``rescreen_batch``: clients in case-reference order after a cursor). Each batch writes an
alert per new hit and opens its ``sanctions_alert`` case, both keyed on the alert, so a batch
retried after a worker died finds what it already did and does only the rest. The workflow
keeps the cursor and the totals, continues as new every ``batches_per_run`` batches, and at the
end opens any alert case a crash left unopened and records the totals on the list version.

``SanctionsListWatch`` is what the ``sanctions-list-watch`` schedule starts: one activity that
looks at the watched folder or URL and, when it holds a new version, does what
``onboarding sanctions load`` does.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from schemas.monitoring import (
        CHECK_SANCTIONS_SOURCE,
        FINISH_RESCREEN,
        RESCREEN_BATCH,
        RESCREEN_WORKFLOW,
        WATCH_WORKFLOW,
        FinishRescreenInput,
        FinishRescreenResult,
        RescreenBatchInput,
        RescreenBatchResult,
        RescreenInput,
        RescreenProgress,
        RescreenTotals,
        WatchInput,
        WatchResult,
    )

BATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=0,  # a list that cannot be read waits (and says so) rather than skips
)


@workflow.defn(name=RESCREEN_WORKFLOW)
class RescreenClientsWorkflow:
    def __init__(self) -> None:
        self._progress: RescreenProgress | None = None

    @workflow.query
    def progress(self) -> RescreenProgress | None:
        return self._progress

    @workflow.run
    async def run(self, inp: RescreenInput) -> RescreenTotals:
        workflow_id = workflow.info().workflow_id
        totals = inp.totals
        cursor = inp.after_ref
        self._progress = RescreenProgress(version=inp.version, after_ref=cursor, totals=totals)
        for _ in range(inp.batches_per_run):
            batch = await workflow.execute_activity(
                RESCREEN_BATCH,
                RescreenBatchInput(
                    version=inp.version,
                    after_ref=cursor,
                    limit=inp.batch_size,
                    workflow_id=workflow_id,
                ),
                start_to_close_timeout=timedelta(hours=1),
                heartbeat_timeout=timedelta(seconds=inp.heartbeat_seconds),
                retry_policy=BATCH_RETRY,
                result_type=RescreenBatchResult,
            )
            totals = totals.plus(batch)
            cursor = batch.next_after_ref or cursor
            self._progress = RescreenProgress(version=inp.version, after_ref=cursor, totals=totals)
            if batch.done:
                finished = await workflow.execute_activity(
                    FINISH_RESCREEN,
                    FinishRescreenInput(
                        version=inp.version, totals=totals, workflow_id=workflow_id
                    ),
                    start_to_close_timeout=timedelta(minutes=30),
                    heartbeat_timeout=timedelta(seconds=inp.heartbeat_seconds),
                    retry_policy=BATCH_RETRY,
                    result_type=FinishRescreenResult,
                )
                totals = totals.model_copy(
                    update={"cases_opened": totals.cases_opened + finished.cases_opened}
                )
                self._progress = RescreenProgress(
                    version=inp.version, after_ref=cursor, totals=totals, done=True
                )
                return totals
        workflow.continue_as_new(inp.model_copy(update={"after_ref": cursor, "totals": totals}))


@workflow.defn(name=WATCH_WORKFLOW)
class SanctionsListWatchWorkflow:
    @workflow.run
    async def run(self, inp: WatchInput) -> WatchResult:
        return await workflow.execute_activity(
            CHECK_SANCTIONS_SOURCE,
            inp,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=30),
                maximum_interval=timedelta(minutes=10),
                maximum_attempts=5,
            ),
            result_type=WatchResult,
        )
