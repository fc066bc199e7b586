"""Builders for test inputs, with realistic defaults a test overrides field by field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio.client import WorkflowHandle

from schemas.case import CaseState
from schemas.client import ClientProfile
from tests.waiting import eventually
from workflows.onboarding import OnboardingCaseWorkflow


def profile(**overrides: Any) -> ClientProfile:
    data: dict[str, Any] = {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+447700900123",
        "client_type": "individual",
        "tier": "standard",
        "country": "GB",
    }
    data.update(overrides)
    return ClientProfile.model_validate(data)


def profile_json(**overrides: Any) -> dict[str, Any]:
    return profile(**overrides).model_dump(mode="json")


async def wait_for_state(
    handle: WorkflowHandle[Any, Any],
    predicate: Callable[[CaseState], bool],
    *,
    timeout: float = 30,  # generous: a loaded CI machine is slow, a wrong state still fails
) -> CaseState:
    """Poll the workflow's state query until ``predicate`` holds (fails the test on timeout)."""
    return await eventually(
        lambda: handle.query(OnboardingCaseWorkflow.state),
        predicate,
        what=f"the state of {handle.id} to match",
        timeout=timeout,
    )


async def start_case(env: Any, worker: Any, **profile_overrides: Any) -> tuple[str, Any]:
    """Start a case directly on Temporal (as an operator could); returns (ref, handle)."""
    from schemas.case import CaseInput, workflow_id_for
    from tests.conftest import new_ref

    ref = new_ref()
    handle = await env.client.start_workflow(
        OnboardingCaseWorkflow.run,
        CaseInput(case_ref=ref, client=profile(**profile_overrides), requested_by="test"),
        id=workflow_id_for(ref),
        task_queue=worker.task_queue,
    )
    if hasattr(worker, "started_cases"):
        worker.started_cases.append(handle)  # closed by running_worker if the test doesn't
    return ref, handle


async def audit_kinds(sessions: Any, ref: str) -> list[str]:
    """The case's audit trail as the read model has it, oldest first."""
    from sqlalchemy import select

    from store.models import CaseEvent

    async with sessions() as s:
        rows = await s.scalars(
            select(CaseEvent).where(CaseEvent.case_ref == ref).order_by(CaseEvent.id)
        )
        return [r.kind for r in rows]


async def wait_for_event(sessions: Any, ref: str, kind: str, *, timeout: float = 30) -> None:
    await eventually(
        lambda: audit_kinds(sessions, ref),
        lambda kinds: kind in kinds,
        what=f"a {kind} event in {ref}'s audit trail",
        timeout=timeout,
    )


async def assert_no_event(sessions: Any, ref: str, kind: str) -> None:
    """No ``kind`` in the case's audit trail: for the time-skipping server, after ``env.sleep``.

    No settling wait: the test server does not move its clock while a workflow task or an
    activity (the projection that writes the trail included) is outstanding, so when
    ``env.sleep`` returns, everything due up to now has been written, and nothing due later can
    fire until the test sleeps again. What the trail lacks now, it lacks for good until then.
    """
    kinds = await audit_kinds(sessions, ref)
    assert kind not in kinds, f"unexpected {kind}; trail: {kinds}"


WAIVER = {"waive_verification": True, "note": "originals checked at the branch"}


def waived_documents(actor: str = "cm") -> Any:
    """A case manager's waiver: gets a test past document collection without uploads."""
    from schemas.commands import DocumentsReceived

    return DocumentsReceived(actor=actor, **WAIVER)


async def close_case(handle: WorkflowHandle[Any, Any]) -> None:
    """End a test's case the way a user would (cancel), and let its side effects finish.

    Terminating instead would strand in-flight activities, and the time-skipping server does
    not skip time while any activity is outstanding.
    """
    from schemas.commands import CancelCase
    from schemas.engine_commands import CancelCaseCmd, CommandResult

    if (await handle.describe()).workflow_type == "CaseWorkflow":
        try:
            await handle.execute_update(
                "cancel",
                CancelCaseCmd(actor="test", closure_code="other", reason="test done"),
                result_type=CommandResult,
            )
        except Exception:  # resolved: a resolved case cannot be cancelled, and only its
            await handle.terminate("test done: resolved case")  # closing timer is left
            return
        await handle.result()
        return
    await handle.execute_update(
        OnboardingCaseWorkflow.cancel, CancelCase(closure_code="test_done", actor="test")
    )
    await handle.result()
