"""Subprocess cases: an enterprise onboarding starts a security review as a child case with
its own state, SLA and read-model row; cancelling the parent cancels the child."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHandle

from schemas.engine_commands import (
    CancelCaseCmd,
    CommandResult,
    CompleteTaskCmd,
    Decide,
    TickItem,
    WaiveDocuments,
)
from schemas.snapshot import CaseSnapshot
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import profile, start, wait_for
from tests.engine.readmodel import case_row, events, eventually, task_row

ENTERPRISE = {
    "name": "Acme Holdings Ltd",
    "email": "onboarding@acme.example.com",
    "client_type": "enterprise",
    "country": "GB",
    "date_of_birth": None,
}


def _active(s: CaseSnapshot) -> list[Any]:
    return [e for e in s.elements if e.status == "active"]


async def to_security_review(handle: WorkflowHandle[Any, Any]) -> CaseSnapshot:
    """Documents waived, compliance approved by two different people: the security review."""
    await wait_for(handle, lambda s: s.stage == "document_collection" and bool(_active(s)))
    await handle.execute_update(
        "waive_documents",
        WaiveDocuments(actor="cm1", role="case_manager", note="originals seen at branch"),
        result_type=CommandResult,
    )
    while True:
        state = await wait_for(
            handle, lambda s: s.stage == "compliance_review" and bool(_active(s))
        )
        active = _active(state)[0]
        if active.kind == "approval":
            break
        if active.kind == "task":
            await handle.execute_update(
                "complete_task",
                CompleteTaskCmd(actor="cr1", role="compliance_reviewer", task_key=active.key),
                result_type=CommandResult,
            )

        def settled(s: CaseSnapshot, key: str = active.key) -> bool:
            return all(e.key != key or e.status != "active" for e in s.elements)

        await wait_for(handle, settled)
    assert state.approvals_required == 2  # enterprise: two independent reviewers
    await handle.execute_update(
        "decide",
        Decide(actor="cr1", role="compliance_reviewer", decision="approve"),
        result_type=CommandResult,
    )
    await handle.execute_update(
        "decide",
        Decide(actor="cm2", role="case_manager", decision="approve"),
        result_type=CommandResult,
    )
    return await wait_for(
        handle,
        lambda s: (
            s.stage == "security_review"
            and any(e.kind == "subprocess" and e.child_workflow_id for e in _active(s))
        ),
    )


async def test_enterprise_case_runs_a_security_review_child_and_cancels_it(
    time_skipping_env, sessions
):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "client_onboarding",
            client_profile=profile(**ENTERPRISE),
            started=worker.started_cases,
        )
        parent = await to_security_review(handle)
        element = next(e for e in parent.elements if e.key == "security_review_case")
        assert element.child_workflow_id is not None
        child = client.get_workflow_handle(element.child_workflow_id)
        worker.started_cases.append(child)

        # The child is a case of its own: its type, stage, SLA and row.
        kid = await wait_for(
            child,
            lambda s: s.stage == "security_assessment" and bool(_active(s)),
        )
        assert kid.case_type == "security_review"
        assert kid.case_ref != ref and kid.case_ref.startswith(ref)
        assert kid.status == "open"
        assert [v.stage for v in kid.history] == ["security_assessment"]
        assert kid.sla is not None and kid.sla.budget_seconds == 8 * 3600
        assert kid.stages[0].owner_role == "security_reviewer"
        assert parent.sla is not None and parent.stage == "security_review"
        assert parent.history[-1].entered_at <= kid.history[0].entered_at
        child_row = await eventually(
            lambda: case_row(sessions, kid.case_ref), lambda c: c is not None
        )
        assert child_row is not None
        assert child_row.case_type == "security_review"
        assert child_row.stage == "security_assessment"
        assert child_row.workflow_id == element.child_workflow_id
        parent_row = await case_row(sessions, ref)
        assert parent_row is not None and parent_row.stage == "security_review"

        # Cancelling the parent cancels the child.
        result = await handle.execute_update(
            "cancel",
            CancelCaseCmd(
                actor="cm1",
                role="case_manager",
                closure_code="client_withdrew",
                reason="went with another bank",
            ),
            result_type=CommandResult,
        )
        assert "cancelled by cm1" in result.message
        outcome = await handle.result()
        assert outcome["status"] == "cancelled"
        assert outcome["closure_code"] == "client_withdrew"
        kid = await wait_for(child, lambda s: s.status == "cancelled")
        assert kid.closure_code == "cancelled_by_parent"
        parent = await wait_for(handle, lambda s: s.status == "cancelled")
        assert parent.closure_code == "client_withdrew"
        element = next(e for e in parent.elements if e.key == "security_review_case")
        assert element.status == "skipped" and element.outcome == "cancelled"

    parent_row = await eventually(
        lambda: case_row(sessions, ref), lambda c: c is not None and c.status == "cancelled"
    )
    assert parent_row is not None
    assert parent_row.closure_reason == "client_withdrew: went with another bank"
    child_row = await eventually(
        lambda: case_row(sessions, kid.case_ref),
        lambda c: c is not None and c.status == "cancelled",
    )
    assert child_row is not None and child_row.closed_at is not None
    assert (child_row.closure_reason or "").startswith("cancelled_by_parent")
    row = await task_row(sessions, ref, "security_review_case")
    assert row is not None and row.status == "skipped"
    for case_ref in (ref, kid.case_ref):
        cancelled = await events(sessions, case_ref, "case_cancelled")
        assert len(cancelled) == 1


async def test_the_parent_goes_on_when_the_security_review_resolves(time_skipping_env, sessions):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "client_onboarding",
            client_profile=profile(**ENTERPRISE),
            started=worker.started_cases,
        )
        parent = await to_security_review(handle)
        element = next(e for e in parent.elements if e.key == "security_review_case")
        assert element.child_workflow_id is not None
        child = client.get_workflow_handle(element.child_workflow_id)
        worker.started_cases.append(child)
        kid = await wait_for(child, lambda s: bool(_active(s)))
        for item in ("questionnaire_reviewed", "pen_test_report", "data_processing_agreement"):
            await child.execute_update(
                "tick",
                TickItem(actor="cm1", role="case_manager", element="security_checks", item=item),
                result_type=CommandResult,
            )
        kid = await wait_for(
            child,
            lambda s: any(
                e.key == "security_approval" and e.status == "active" for e in s.elements
            ),
        )
        approvers = [("sec1", "compliance_reviewer"), ("sec2", "case_manager")]
        for actor, role in approvers[: kid.approvals_required]:
            await child.execute_update(
                "decide",
                Decide(actor=actor, role=role, decision="approve"),
                result_type=CommandResult,
            )
        outcome = await child.result()
        assert outcome["status"] == "closed"  # a child case closes when it resolves
        assert outcome["resolution"] == "completed"

        parent = await wait_for(handle, lambda s: s.stage not in ("security_review",))
        assert parent.stage in ("account_setup", "final_review")
        row = await eventually(
            lambda: task_row(sessions, ref, "security_review_case"),
            lambda r: r is not None and r.done,
        )
        assert row is not None and row.status == "done" and row.outcome == "completed"
        assert parent.fields["security"]["status"] == "closed"
        assert parent.fields["security"]["resolution"] == "completed"
        security_visit = next(v for v in parent.history if v.stage == "security_review")
        assert security_visit.outcome == "completed"
        finished = await eventually(
            lambda: events(sessions, ref, "subprocess_finished"), lambda rows: len(rows) == 1
        )
        assert finished[0].detail["resolution"] == "completed"
    child_row = await eventually(
        lambda: case_row(sessions, kid.case_ref),
        lambda c: c is not None and c.status == "closed",
    )
    assert child_row is not None and child_row.resolution == "completed"
