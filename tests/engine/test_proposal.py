"""Client acceptance on the engine: a refund proposal the client rejects sends the case back
to review (a new visit), and one the client accepts completes and the case resolves."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHandle

from schemas.engine_commands import CommandResult, CompleteTaskCmd, ProposalResponse
from schemas.snapshot import CaseSnapshot
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import start, wait_for
from tests.engine.readmodel import case_row, events, eventually, task_row, visits

REFUND = {"order_id": "ORD-31", "return_type": "refund", "has_receipt": True, "amount": 50}


def _active(key: str) -> Any:
    def check(s: CaseSnapshot) -> bool:
        return any(e.key == key and e.status == "active" for e in s.elements)

    return check


async def _decide_in_review(handle: WorkflowHandle[Any, Any], visits_so_far: int) -> None:
    """The RM tells the customer the decision; the case moves to resolution."""
    await wait_for(
        handle,
        lambda s: len(s.history) == visits_so_far and _active("tell_client_decision")(s),
    )
    await handle.execute_update(
        "complete_task",
        CompleteTaskCmd(actor="rm1", role="relationship_manager", task_key="tell_client_decision"),
        result_type=CommandResult,
    )


async def test_rejected_proposal_goes_back_then_accepted_one_resolves(time_skipping_env, sessions):
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
        await _decide_in_review(handle, 1)
        state = await wait_for(handle, _active("accept_refund"))
        assert state.stage == "resolution"
        assert state.status == "waiting_on_client"
        assert state.proposal is not None and "refund" in state.proposal
        assert "respond_to_proposal" in state.allowed_actions

        # The client says no: back to review, in a new visit of it.
        result = await handle.execute_update(
            "respond_to_proposal",
            ProposalResponse(actor="client", role="client", accept=False, reason="I paid 60"),
            result_type=CommandResult,
        )
        assert "goes back to review" in result.message
        state = await wait_for(handle, lambda s: len(s.history) == 3)
        assert [v.stage for v in state.history] == ["review", "resolution", "review"]
        assert state.history[1].outcome == "sent_back"
        assert state.history[2].exited_at is None
        assert state.stage == "review" and state.status == "open"
        assert state.proposal is None
        expected = [("review", "completed"), ("resolution", "sent_back"), ("review", None)]
        await eventually(
            lambda: visits(sessions, ref),
            lambda rows: [(r.stage, r.outcome) for r in rows] == expected,
        )
        sent_back = await eventually(
            lambda: events(sessions, ref, "sent_back"), lambda rows: len(rows) == 1
        )
        assert sent_back[0].actor == "client"
        assert sent_back[0].detail["from"] == "resolution"
        assert sent_back[0].detail["to"] == "review"
        assert "I paid 60" in sent_back[0].detail["reason"]
        rejected = await eventually(
            lambda: events(sessions, ref, "proposal_rejected"), lambda rows: len(rows) == 1
        )
        assert rejected[0].detail == {"element": "accept_refund", "reason": "I paid 60"}
        row = await eventually(
            lambda: task_row(sessions, ref, "accept_refund"),
            lambda r: r is not None and r.outcome == "rejected",
        )
        assert row is not None and row.note == "I paid 60"

        # A new decision, a new proposal; this time the client accepts.
        await _decide_in_review(handle, 3)
        state = await wait_for(
            handle, lambda s: len(s.history) == 4 and _active("accept_refund")(s)
        )
        await handle.execute_update(
            "respond_to_proposal",
            ProposalResponse(actor="client", role="client", accept=True),
            result_type=CommandResult,
        )
        state = await wait_for(handle, lambda s: s.status == "resolved")
        assert state.resolution == "completed"
        accept = next(e for e in state.elements if e.key == "accept_refund")
        assert accept.status == "done" and accept.outcome == "accepted"
        refund = next(e for e in state.elements if e.key == "issue_refund")
        assert refund.status == "done"
        assert state.fields["refund"]["amount"] == 50
        row = await eventually(
            lambda: task_row(sessions, ref, "accept_refund"),
            lambda r: r is not None and r.outcome == "accepted",
        )
        assert row is not None and row.status == "done" and row.done_by == "client"
        case = await eventually(
            lambda: case_row(sessions, ref), lambda c: c is not None and c.status == "resolved"
        )
        assert case is not None and case.resolution == "completed"
        accepted = await eventually(
            lambda: events(sessions, ref, "proposal_accepted"), lambda rows: len(rows) == 1
        )
        assert accepted[0].actor == "client"
