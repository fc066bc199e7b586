"""RefitEta: learn the ETA model again from the case history (a Temporal Schedule starts one
weekly by default; ``onboarding eta fit`` does the same by hand). One activity: the fit is
numpy/LightGBM work that never belongs in workflow code."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from schemas.eta import REFIT_ETA, RefitEtaInput, RefitEtaResult

REFIT_ETA_WORKFLOW = "RefitEta"


@workflow.defn(name=REFIT_ETA_WORKFLOW)
class RefitEtaWorkflow:
    @workflow.run
    async def run(self, inp: RefitEtaInput) -> RefitEtaResult:
        return await workflow.execute_activity(
            REFIT_ETA,
            inp,
            start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(minutes=1)),
            result_type=RefitEtaResult,
        )
