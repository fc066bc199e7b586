"""Worker interceptors of our own (tracing's comes from the client: core/tracing.py)."""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from core.logging import case_ref_of_workflow


class ActivityLogContext(Interceptor):
    """Every log line written while an activity runs carries its case: ``case_ref`` (the
    input's, else the one in the workflow id), ``workflow_id``, ``run_id`` and ``activity``,
    whichever logger wrote it (provider adapters and libraries included)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindLogContext(next)


class _BindLogContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        first = input.args[0] if input.args else None
        case_ref = getattr(first, "case_ref", None)
        if not isinstance(case_ref, str):
            case_ref = case_ref_of_workflow(info.workflow_id)
        context = {
            "case_ref": case_ref,
            "workflow_id": info.workflow_id,
            "run_id": info.workflow_run_id,
            "activity": info.activity_type,
        }
        # each activity runs in a task of its own: the binding ends with it
        with structlog.contextvars.bound_contextvars(
            **{k: v for k, v in context.items() if v is not None}
        ):
            return await super().execute_activity(input)
