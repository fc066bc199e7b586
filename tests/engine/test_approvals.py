"""Approvals on the engine: n-of-m by different people, no approval when the case type's
condition does not call for one, rejection reasons from the case type's list, approver roles.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from schemas.engine_commands import CommandResult, Decide
from schemas.snapshot import CaseSnapshot
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import snapshot, start, wait_for
from tests.engine.readmodel import case_row, events, eventually, kinds, task_row, visits

APPROVAL = "group_approval"


def _order(value: int) -> dict[str, Any]:
    return {"order_id": f"PO-{value}", "order_value": value, "currency": "GBP", "items": 3}


def _approval_open(s: CaseSnapshot) -> bool:
    return any(e.key == APPROVAL and e.status == "active" for e in s.elements)


async def _refused(handle: WorkflowHandle[Any, Any], cmd: Decide) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("decide", cmd, result_type=CommandResult)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_two_approvals_need_two_people(time_skipping_env, sessions):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "order_approval",
            data=_order(60000),
            started=worker.started_cases,
        )
        state = await wait_for(handle, _approval_open)
        assert state.stage == "approval" and state.approvals_required == 2
        first = await handle.execute_update(
            "decide",
            Decide(actor="a1", role="case_manager", decision="approve"),
            result_type=CommandResult,
        )
        assert "1 of 2" in first.message and first.stage == "approval"

        for same in ("a1", "A1"):  # the same identity, however it is typed
            cause = await _refused(
                handle, Decide(actor=same, role="compliance_reviewer", decision="approve")
            )
            assert cause.type == "WrongState"
            assert "different person" in str(cause)
        state = await snapshot(handle)
        assert state.stage == "approval"
        assert [(v.actor, v.decision) for v in state.approvals] == [("a1", "approve")]

        second = await handle.execute_update(
            "decide",
            Decide(actor="a2", role="case_manager", decision="approve"),
            result_type=CommandResult,
        )
        assert "approved by a2" in second.message
        state = await wait_for(handle, lambda s: s.status == "resolved")
        assert state.resolution == "completed"
        assert [v.stage for v in state.history] == ["intake", "approval", "fulfilment"]
        assert state.history[1].outcome == "completed"
        row = await eventually(
            lambda: task_row(sessions, ref, APPROVAL), lambda r: r is not None and r.done
        )
        assert row is not None and row.status == "done" and row.outcome == "approved"
        assert row.required == 2
        assert [v["actor"] for v in row.votes or []] == ["a1", "a2"]
        approved = await eventually(
            lambda: events(sessions, ref, "approval_approve"), lambda rows: len(rows) == 2
        )
        assert [e.actor for e in approved] == ["a1", "a2"]


async def test_a_small_order_needs_no_approval(time_skipping_env, sessions):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "order_approval",
            data=_order(40000),
            started=worker.started_cases,
        )
        state = await wait_for(handle, lambda s: s.status == "resolved")
        assert state.resolution == "completed"
        assert state.approvals == [] and state.approvals_required == 0
        assert [v.stage for v in state.history] == ["intake", "approval", "fulfilment"]
        row = await eventually(
            lambda: task_row(sessions, ref, APPROVAL), lambda r: r is not None and r.done
        )
        assert row is not None and row.status == "not_applicable" and not row.votes
        case = await eventually(
            lambda: case_row(sessions, ref), lambda c: c is not None and c.status == "resolved"
        )
        assert case is not None and case.resolution == "completed"
        seen = kinds(await events(sessions, ref))
        assert "case_resolved" in seen
        assert not {"approval_requested", "approval_approve", "auto_approved"} & set(seen)


async def test_a_rejection_needs_a_listed_reason_and_resolves_rejected(time_skipping_env, sessions):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "order_approval",
            data=_order(75000),
            started=worker.started_cases,
        )
        await wait_for(handle, _approval_open)
        cause = await _refused(
            handle,
            Decide(
                actor="a1",
                role="case_manager",
                decision="reject",
                reason_code="too_expensive",
                note="over budget",
            ),
        )
        assert cause.type == "Invalid"
        assert "credit_limit" in str(cause)  # names the allowed codes
        assert (await snapshot(handle)).status == "open"

        result = await handle.execute_update(
            "decide",
            Decide(
                actor="a1",
                role="case_manager",
                decision="reject",
                reason_code="credit_limit",
                note="customer is over their credit limit",
            ),
            result_type=CommandResult,
        )
        assert "rejected by a1 (credit_limit)" in result.message
        state = await wait_for(handle, lambda s: s.status == "resolved")
        assert state.resolution == "rejected"
        assert state.stage == "approval"  # fulfilment never ran
        assert [v.stage for v in state.history] == ["intake", "approval"]
        assert state.history[-1].outcome == "rejected"
        case = await eventually(
            lambda: case_row(sessions, ref), lambda c: c is not None and c.status == "resolved"
        )
        assert case is not None and case.resolution == "rejected"
        rejected = await eventually(
            lambda: events(sessions, ref, "approval_reject"), lambda rows: len(rows) == 1
        )
        assert rejected[0].detail["reason_code"] == "credit_limit"
        rows = await eventually(
            lambda: visits(sessions, ref),
            lambda rows: len(rows) == 2 and rows[-1].exited_at is not None,
        )
        assert rows[-1].outcome == "rejected"


async def test_a_role_that_does_not_approve_is_forbidden(time_skipping_env, sessions):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        # A refund over 100 needs a manager. The review stage is open to relationship
        # managers, but they are not among the approval's approver_roles.
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "return_request",
            data={
                "order_id": "ORD-55",
                "return_type": "refund",
                "has_receipt": True,
                "amount": 150,
            },
            started=worker.started_cases,
        )
        state = await wait_for(
            handle,
            lambda s: any(e.key == "manager_approval" and e.status == "active" for e in s.elements),
        )
        assert "relationship_manager" in state.access
        cause = await _refused(
            handle, Decide(actor="rm1", role="relationship_manager", decision="approve")
        )
        assert cause.type == "Forbidden"
        assert "compliance_reviewer" in str(cause)
        state = await snapshot(handle)
        assert state.approvals == [] and state.stage == "review"
        await handle.execute_update(
            "decide",
            Decide(actor="cr1", role="compliance_reviewer", decision="approve"),
            result_type=CommandResult,
        )
        state = await wait_for(
            handle,
            lambda s: any(e.key == "manager_approval" and e.status == "done" for e in s.elements),
        )
        assert [v.actor for v in state.approvals] == ["cr1"]
        approved = await eventually(
            lambda: events(sessions, ref, "approval_approve"), lambda rows: len(rows) == 1
        )
        assert approved[0].actor == "cr1"
