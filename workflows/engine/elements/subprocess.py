"""``subprocess``: a child case of another case type (e.g. a security review), with its own
SLA and read-model row. The parent waits for it; cancelling the parent cancels the child."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

from schemas.case_state import ElementState
from schemas.casetype import SubprocessElement
from schemas.conditions import resolve_argument
from schemas.contracts import CASE_WORKFLOW, EngineCaseInput, EngineCaseOutcome
from workflows.engine.elements.base import finish, open_element
from workflows.engine.runtime import CaseRuntime


def child_ref(case: CaseRuntime, spec: SubprocessElement) -> str:
    visit = case.state.history[-1].seq if case.state.history else 1
    return f"{case.state.case_ref}-{spec.key.replace('_', '-')}-{visit}"[:64]


async def run(case: CaseRuntime, spec: SubprocessElement, element: ElementState) -> None:
    open_element(case, element)
    child_type = case.input.subprocess_types[spec.case_type]
    ref = child_ref(case, spec)
    workflow_id = f"{child_type.workflow_prefix or child_type.name}-{ref}"
    element.child_workflow_id = workflow_id
    case.event("subprocess_started", "system", {"case_type": spec.case_type, "child": ref})
    await case.flush()  # the child's row and our link are visible before it runs
    handle = await workflow.start_child_workflow(
        CASE_WORKFLOW,
        EngineCaseInput(
            case_ref=ref,
            workflow_id=workflow_id,
            case_type=child_type,
            client=case.client,
            data={k: resolve_argument(case.state.fields, v) for k, v in spec.data.items()},
            requested_by=f"case:{case.state.case_ref}",
            parent_workflow_id=case.state.workflow_id,
            subprocess_types=case.input.subprocess_types,  # grandchildren stay pinned too
            calendars=case.input.calendars,
        ),
        id=workflow_id,
        task_queue=workflow.info().task_queue,
        parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
        result_type=EngineCaseOutcome,
    )
    done = asyncio.ensure_future(_result(handle, case))
    await case.wait_until(lambda: done.done() or element.finished)
    if not done.done():  # cancelled or sent back: the child goes too
        handle.cancel()
        await asyncio.wait([done])
        return
    outcome = done.result()
    if element.finished:
        return
    if outcome is None:
        finish(case, element, by="system", outcome="child failed")
        return
    if spec.output:
        case.state.fields[spec.output] = {
            "status": outcome.status,
            "resolution": outcome.resolution,
            **outcome.fields,
        }
    finish(case, element, by="system", outcome=outcome.resolution or outcome.status)
    case.event("subprocess_finished", "system", {"child": ref, "resolution": outcome.resolution})


async def _result(
    handle: workflow.ChildWorkflowHandle[object, EngineCaseOutcome], case: CaseRuntime
) -> EngineCaseOutcome | None:
    try:
        return await handle
    except (ChildWorkflowError, asyncio.CancelledError):
        return None
    finally:
        case.touch()  # the waiting loop wakes on changes only: the child's end is one
