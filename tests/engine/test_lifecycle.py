"""Case lifecycle on the engine: resolved -> reopened (by a person, low CSAT or a client
message) with a fresh stage visit and SLA, resolved -> closed after ``close_after``, and a
reopen of a case that is not resolved refused before it reaches history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from schemas.engine_commands import (
    ClientMessage,
    CommandResult,
    CompleteTaskCmd,
    Feedback,
    ReopenCase,
)
from schemas.snapshot import CaseSnapshot
from store.db import SessionFactory
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import snapshot, start, wait_for
from tests.engine.readmodel import case_row, events, eventually, visits

# A return with a receipt, for store credit: one task, then it resolves by itself.
STORE_CREDIT = {"order_id": "ORD-1001", "return_type": "store_credit", "has_receipt": True}
REVIEW_SLA = 24 * 3600.0


def _task_open(key: str) -> Any:
    def check(s: CaseSnapshot) -> bool:
        return any(e.key == key and e.status == "active" for e in s.elements)

    return check


async def resolve_return(handle: WorkflowHandle[Any, Any]) -> CaseSnapshot:
    """Take a store-credit return from review to resolved (one task by the RM)."""
    await wait_for(handle, _task_open("tell_client_decision"))
    await handle.execute_update(
        "complete_task",
        CompleteTaskCmd(actor="rm1", role="relationship_manager", task_key="tell_client_decision"),
        result_type=CommandResult,
    )
    return await wait_for(handle, lambda s: s.status == "resolved")


async def assert_reopened_at_review(
    handle: WorkflowHandle[Any, Any], sessions: SessionFactory, ref: str, *, visit: int
) -> CaseSnapshot:
    """The case is open again in review, in a new visit whose SLA starts from zero."""
    task_open = _task_open("tell_client_decision")
    state = await wait_for(
        handle, lambda s: len(s.history) == visit and s.status == "open" and task_open(s)
    )
    assert state.stage == "review"
    assert state.resolution is None
    current = state.history[-1]
    assert (current.seq, current.stage, current.exited_at) == (visit, "review", None)
    assert current.sla_budget_seconds == REVIEW_SLA
    assert state.sla is not None
    assert state.sla.budget_seconds == REVIEW_SLA
    assert state.sla.state == "on_track"
    assert state.sla.active_seconds < 60
    assert state.sla.remaining_seconds is not None
    assert state.sla.remaining_seconds > REVIEW_SLA - 60
    element = next(e for e in state.elements if e.key == "tell_client_decision")
    assert element.done_by is None and element.reminders_sent == 0  # fresh elements
    rows = await eventually(
        lambda: visits(sessions, ref),
        lambda rows: (
            len(rows) == visit
            and rows[-1].exited_at is None
            and all(r.exited_at is not None for r in rows[:-1])
        ),
    )
    assert rows[-1].stage == "review"
    assert rows[-1].sla_budget_seconds == REVIEW_SLA
    row = await eventually(
        lambda: case_row(sessions, ref), lambda c: c is not None and c.status == "open"
    )
    assert row is not None and row.stage == "review"
    return state


async def test_reopen_returns_to_the_chosen_stage_with_a_fresh_sla(time_skipping_env, sessions):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "return_request",
            data=STORE_CREDIT,
            started=worker.started_cases,
        )
        resolved = await resolve_return(handle)
        assert resolved.resolution == "completed"
        assert [v.stage for v in resolved.history] == ["review", "resolution"]
        assert resolved.allowed_actions == ["reopen", "client_message", "feedback"]
        # Three days go by on the resolved case: none of that counts against the new visit.
        await time_skipping_env.sleep(timedelta(days=3))
        result = await handle.execute_update(
            "reopen",
            ReopenCase(actor="cm1", role="case_manager", to_stage="review", reason="wrong item"),
            result_type=CommandResult,
        )
        assert "reopened at review" in result.message
        state = await assert_reopened_at_review(handle, sessions, ref, visit=3)
        resolved_at = resolved.history[-1].exited_at
        assert resolved_at is not None
        assert state.history[-1].entered_at >= resolved_at + timedelta(days=3)
        reopened = await eventually(
            lambda: events(sessions, ref, "case_reopened"), lambda rows: len(rows) == 1
        )
        assert reopened[0].actor == "cm1"
        assert reopened[0].detail == {"to": "review", "reason": "wrong item"}


async def test_a_reopened_case_row_drops_its_old_resolution(time_skipping_env, sessions):
    """Regression: the projection once dropped resolution=None, so a reopened case kept
    showing its old resolution in the case list (fixed by CasePatchV2.clear)."""
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "return_request",
            data=STORE_CREDIT,
            started=worker.started_cases,
        )
        await resolve_return(handle)
        await eventually(
            lambda: case_row(sessions, ref), lambda c: c is not None and c.status == "resolved"
        )
        await handle.execute_update(
            "reopen",
            ReopenCase(actor="cm1", role="case_manager", reason="wrong item"),
            result_type=CommandResult,
        )
        await assert_reopened_at_review(handle, sessions, ref, visit=3)
        row = await case_row(sessions, ref)
        assert row is not None and row.resolution is None


async def test_low_csat_reopens_a_resolved_case_and_a_good_one_does_not(
    time_skipping_env, sessions
):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "return_request",
            data=STORE_CREDIT,
            started=worker.started_cases,
        )
        await resolve_return(handle)
        good = await handle.execute_update(
            "feedback",
            Feedback(actor="client", role="client", csat=4, comment="fine"),
            result_type=CommandResult,
        )
        assert good.status == "resolved"
        assert good.message == "thank you for your feedback"
        state = await snapshot(handle)
        assert state.status == "resolved" and len(state.history) == 2
        assert state.fields["feedback"] == {"csat": 4, "nps": None}

        bad = await handle.execute_update(
            "feedback",
            Feedback(actor="client", role="client", csat=2, comment="still no credit"),
            result_type=CommandResult,
        )
        assert "reopened" in bad.message
        await assert_reopened_at_review(handle, sessions, ref, visit=3)
        feedback = await eventually(
            lambda: events(sessions, ref, "feedback"), lambda rows: len(rows) == 2
        )
        assert [e.detail["csat"] for e in feedback] == [4, 2]
        reopened = await eventually(
            lambda: events(sessions, ref, "case_reopened"), lambda rows: len(rows) == 1
        )
        assert reopened[0].actor == "client"
        assert reopened[0].detail["to"] == "review"


async def test_a_client_message_reopens_a_resolved_case(time_skipping_env, sessions):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "return_request",
            data=STORE_CREDIT,
            started=worker.started_cases,
        )
        await resolve_return(handle)
        result = await handle.execute_update(
            "client_message",
            ClientMessage(actor="client", role="client", text="The credit never arrived"),
            result_type=CommandResult,
        )
        assert "open again" in result.message
        await assert_reopened_at_review(handle, sessions, ref, visit=3)
        message = await eventually(
            lambda: events(sessions, ref, "client_message"), lambda rows: len(rows) == 1
        )
        assert message[0].detail == {"text": "The credit never arrived", "channel": "portal"}
        reopened = await eventually(
            lambda: events(sessions, ref, "case_reopened"), lambda rows: len(rows) == 1
        )
        assert reopened[0].detail["reason"] == "the client wrote on a resolved case"


async def test_a_resolved_case_closes_after_close_after(time_skipping_env, sessions):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "return_request",
            data=STORE_CREDIT,
            started=worker.started_cases,
        )
        await resolve_return(handle)
        await time_skipping_env.sleep(timedelta(days=6, hours=23))
        assert (await snapshot(handle)).status == "resolved"  # not yet: close_after is 7d
        await time_skipping_env.sleep(timedelta(hours=1, minutes=1))
        state = await wait_for(handle, lambda s: s.status == "closed")
        assert state.resolution == "completed"
        assert state.allowed_actions == []
        outcome = await handle.result()
    assert outcome["status"] == "closed"
    assert outcome["resolution"] == "completed"
    assert outcome["case_ref"] == ref
    row = await eventually(
        lambda: case_row(sessions, ref), lambda c: c is not None and c.status == "closed"
    )
    assert row is not None and row.closed_at is not None and row.resolution == "completed"
    closed = await events(sessions, ref, "case_closed")
    assert [e.detail for e in closed] == [{"resolution": "completed"}]


async def test_reopen_of_an_open_case_is_refused(time_skipping_env, sessions):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "return_request",
            data=STORE_CREDIT,
            started=worker.started_cases,
        )
        await wait_for(handle, _task_open("tell_client_decision"))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                "reopen",
                ReopenCase(actor="cm1", role="case_manager", reason="try"),
                result_type=CommandResult,
            )
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "WrongState"
        assert "not resolved" in str(cause)
        state = await snapshot(handle)
        assert state.status == "open" and len(state.history) == 1
        assert await events(sessions, ref, "case_reopened") == []
