"""Skipping elements and per-stage access on the engine.

An optional element skipped with a reason shows in the audit trail and the task list as
skipped; a required one cannot be skipped. In client onboarding's compliance review (access:
compliance_reviewer, case_manager) a relationship manager's commands are refused, a
compliance reviewer's accepted; elsewhere the same relationship manager may act.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from schemas.engine_commands import (
    CommandResult,
    CompleteTaskCmd,
    Decide,
    PauseCase,
    ResumeCase,
    SkipElement,
    WaiveDocuments,
)
from schemas.snapshot import CaseSnapshot
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import profile, snapshot, start, wait_for
from tests.engine.readmodel import case_row, events, eventually, task_row

REFUND = {"order_id": "ORD-88", "return_type": "refund", "has_receipt": True, "amount": 40}


def _active(key: str) -> Any:
    def check(s: CaseSnapshot) -> bool:
        return any(e.key == key and e.status == "active" for e in s.elements)

    return check


async def _refused(handle: WorkflowHandle[Any, Any], update: str, cmd: Any) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(update, cmd, result_type=CommandResult)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_skipping_an_optional_element_is_recorded_and_a_required_one_is_refused(
    time_skipping_env, sessions
):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "return_request",
            data=REFUND,
            started=worker.started_cases,
        )
        await wait_for(handle, _active("tell_client_decision"))
        cause = await _refused(
            handle,
            "skip",
            SkipElement(
                actor="cm1", role="case_manager", element="tell_client_decision", reason="busy"
            ),
        )
        assert cause.type == "WrongState"
        assert "not optional" in str(cause)
        state = await snapshot(handle)
        task = next(e for e in state.elements if e.key == "tell_client_decision")
        assert task.status == "active"
        assert "skip" not in state.allowed_actions
        assert await events(sessions, ref, "element_skipped") == []

        await handle.execute_update(
            "complete_task",
            CompleteTaskCmd(
                actor="rm1", role="relationship_manager", task_key="tell_client_decision"
            ),
            result_type=CommandResult,
        )
        state = await wait_for(handle, _active("accept_refund"))
        assert "skip" in state.allowed_actions
        result = await handle.execute_update(
            "skip",
            SkipElement(
                actor="cm1",
                role="case_manager",
                element="accept_refund",
                reason="customer agreed the refund by phone",
            ),
            result_type=CommandResult,
        )
        assert "skipped by cm1" in result.message
        state = await wait_for(handle, lambda s: s.status == "resolved")
        accept = next(e for e in state.elements if e.key == "accept_refund")
        assert accept.status == "skipped"
        assert accept.note == "customer agreed the refund by phone"
        assert next(e for e in state.elements if e.key == "issue_refund").status == "done"

        skipped = await eventually(
            lambda: events(sessions, ref, "element_skipped"), lambda rows: len(rows) == 1
        )
        assert skipped[0].actor == "cm1"
        assert skipped[0].detail == {
            "element": "accept_refund",
            "kind": "client_acceptance",
            "reason": "customer agreed the refund by phone",
        }
        row = await eventually(
            lambda: task_row(sessions, ref, "accept_refund"),
            lambda r: r is not None and r.status == "skipped",
        )
        assert row is not None and row.done and row.done_by == "cm1"
        assert row.note == "customer agreed the refund by phone"
        assert row.outcome == "skipped"


async def test_compliance_review_is_closed_to_relationship_managers(time_skipping_env, sessions):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        # Resident abroad: enhanced due diligence, no straight-through approval.
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "client_onboarding",
            client_profile=profile(country="FR"),
            started=worker.started_cases,
        )
        state = await wait_for(
            handle, lambda s: s.stage == "document_collection" and _active("client_documents")(s)
        )
        assert state.access == []
        # Document collection is open to everyone: a relationship manager may pause it.
        rm = {"actor": "rm1", "role": "relationship_manager"}
        await handle.execute_update(
            "pause", PauseCase(**rm, reason="client on holiday"), result_type=CommandResult
        )
        await handle.execute_update("resume", ResumeCase(**rm), result_type=CommandResult)
        await handle.execute_update(
            "waive_documents",
            WaiveDocuments(actor="cm1", role="case_manager", note="seen at branch"),
            result_type=CommandResult,
        )
        state = await wait_for(handle, _active("enhanced_due_diligence"))
        assert state.stage == "compliance_review"
        assert state.access == ["compliance_reviewer", "case_manager"]
        row = await eventually(
            lambda: case_row(sessions, ref),
            lambda c: c is not None and c.stage == "compliance_review",
        )
        assert row is not None and row.access_roles == ["compliance_reviewer", "case_manager"]

        for update, cmd in (
            ("pause", PauseCase(**rm, reason="client on holiday")),
            ("complete_task", CompleteTaskCmd(**rm, task_key="enhanced_due_diligence")),
            ("decide", Decide(**rm, decision="approve")),
        ):
            cause = await _refused(handle, update, cmd)
            assert cause.type == "Forbidden", update
            assert "compliance_reviewer" in str(cause)
        state = await snapshot(handle)
        assert state.status == "open" and len(state.pauses) == 1  # only the earlier pause
        assert _active("enhanced_due_diligence")(state)

        cr = {"actor": "cr1", "role": "compliance_reviewer"}
        done = await handle.execute_update(
            "complete_task",
            CompleteTaskCmd(**cr, task_key="enhanced_due_diligence", note="source of funds ok"),
            result_type=CommandResult,
        )
        assert "completed by cr1" in done.message
        state = await wait_for(handle, _active("compliance_decision"))
        await handle.execute_update(
            "decide", Decide(**cr, decision="approve"), result_type=CommandResult
        )
        if state.approvals_required == 2:  # high risk: a second, different reviewer
            await handle.execute_update(
                "decide",
                Decide(actor="cm1", role="case_manager", decision="approve"),
                result_type=CommandResult,
            )
        state = await wait_for(handle, lambda s: s.stage not in ("compliance_review",))
        assert state.stage in ("account_setup", "final_review")
        completed = await eventually(
            lambda: events(sessions, ref, "task_completed"), lambda rows: len(rows) == 1
        )
        assert completed[0].actor == "cr1"
        assert completed[0].detail["task"] == "enhanced_due_diligence"
        paused = await events(sessions, ref, "paused")
        assert [e.actor for e in paused] == ["rm1"]
