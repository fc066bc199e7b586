"""``automation``: a named activity (screening, provisioning, refunds, …) with an input
mapping from case fields. Its outputs land in ``fields[output]`` for later conditions.

A business failure (non-retryable) does not fail the case: the element waits, failed, for a
case manager to skip it (with a reason) after fixing things by hand."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from schemas.case_state import ElementState, ElementStatus
from schemas.casetype import AutomationElement
from schemas.conditions import resolve_argument
from schemas.contracts import RUN_AUTOMATION, AutomationInput, AutomationResult
from workflows.engine.elements.base import finish, open_element, resumed
from workflows.engine.runtime import CaseRuntime

AUTOMATION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=20,
)


async def run(case: CaseRuntime, spec: AutomationElement, element: ElementState) -> None:
    if resumed(element) and (element.outcome or "").startswith("failed"):
        await case.wait_until(lambda: element.finished)  # still waiting for a skip
        return
    open_element(case, element)
    if spec.notify_before:
        case.tell_client(spec.notify_before)
    try:
        result = await call(case, spec.action, spec.key, spec.input, limit=spec.timeout)
    except ActivityError as e:
        element.outcome = f"failed: {str(e.cause or e)[:300]}"
        case.projector.element(element)
        case.event("automation_failed", "system", {"action": spec.action, "error": element.outcome})
        case.tell_staff(
            "task_overdue",
            [case.stage_def.owner_role],
            {
                "task_title": f"{spec.title} failed; fix it, then skip the step",
                "stage": case.stage_def.title,
                "assignee_role": case.stage_def.owner_role,
                "due_at": case.now(),
                "escalated_to": None,
            },
        )
        await case.wait_until(lambda: element.finished)
        return
    if spec.output:
        case.state.fields[spec.output] = result.outputs
    for flag in result.flags:
        if flag not in case.state.flags:
            case.state.flags.append(flag)
    if result.flags:
        case.projector.case(flags=list(case.state.flags))
    case.event(
        "automation_completed",
        "system",
        {"action": spec.action, "summary": result.summary, **_safe(result.outputs)},
    )
    finish(case, element, by="system", outcome=result.summary or "done")
    if spec.notify_after:
        case.tell_client(spec.notify_after)
    if spec.action == "provision_account" and "account_number" in result.outputs:
        case.webhook("account.provisioned", {"account_number": result.outputs["account_number"]})


async def call(
    case: CaseRuntime,
    action: str,
    element_key: str,
    mapping: dict[str, str],
    *,
    limit: timedelta = timedelta(minutes=2),
) -> AutomationResult:
    visit = case.state.history[-1].seq if case.state.history else 0
    return await workflow.execute_activity(
        RUN_AUTOMATION,
        AutomationInput(
            case_ref=case.state.case_ref,
            action=action,
            element_key=element_key,
            attempt_key=f"{element_key}-{visit}",
            args={k: resolve_argument(case.state.fields, v) for k, v in mapping.items()},
            client=case.client,
            at=case.now(),
        ),
        start_to_close_timeout=limit,
        heartbeat_timeout=timedelta(seconds=30),
        retry_policy=AUTOMATION_RETRY,
        result_type=AutomationResult,
    )


async def compensate(case: CaseRuntime, reason: str) -> None:
    """Undo what finished automations declared undoable, newest first (saga)."""
    done = [
        (s, e)
        for s in case.case_type.stages
        for e in s.elements
        if isinstance(e, AutomationElement) and e.compensate and e.output in case.state.fields
    ]
    for _, spec in reversed(done):
        assert spec.compensate is not None
        try:
            await call(case, spec.compensate, f"{spec.key}_undo", {"reason": "=" + reason})
        except ActivityError as e:
            case.event(
                "compensation_failed", "system", {"action": spec.compensate, "error": str(e)[:300]}
            )
            continue
        case.event("compensated", "system", {"action": spec.compensate, "of": spec.key})
        case.state.fields.pop(spec.output or "", None)


def _safe(outputs: dict[str, object]) -> dict[str, object]:
    """Scalars only into the audit trail: small, and no nested client data."""
    return {k: v for k, v in outputs.items() if isinstance(v, str | int | float | bool)}


FAILED = ElementStatus.FAILED
