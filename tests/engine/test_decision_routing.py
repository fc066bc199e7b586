"""Routing on a person's decision: an approval may continue the stage when rejected, a
reason can be required for every decision, and later steps read ``decisions.<key>``."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from schemas.engine_commands import CommandResult, CompleteTaskCmd, Decide
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import start, wait_for

TYPE = "decision_routing"


async def _refused(handle: WorkflowHandle[Any, Any], name: str, cmd: Any) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(name, cmd, result_type=CommandResult)
    assert isinstance(refused.value.cause, ApplicationError)
    return refused.value.cause


async def test_a_cleared_decision_skips_the_escalation_steps(time_skipping_env, sessions):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        _, handle = await start(
            client, sessions, worker.task_queue, TYPE, started=worker.started_cases
        )
        await wait_for(handle, lambda s: "decide" in s.allowed_actions)
        cause = await _refused(
            handle, "decide", Decide(actor="r1", role="compliance_reviewer", decision="approve")
        )
        assert cause.type == "Invalid" and "needs a note" in str(cause)
        await handle.execute_update(
            "decide",
            Decide(
                actor="r1",
                role="compliance_reviewer",
                decision="approve",
                note="different date of birth and country",
            ),
            result_type=CommandResult,
        )
        state = await wait_for(handle, lambda s: s.status == "resolved")
        assert state.resolution == "completed"
        assert state.fields["decisions"]["verdict"] == {
            "outcome": "approved",
            "by": "r1",
            "note": "different date of birth and country",
            "reason_code": None,
        }
        steps = {e.key: e.status for e in state.elements}
        assert steps == {
            "verdict": "done",
            "escalation_notice": "not_applicable",
            "follow_up": "not_applicable",
        }


async def test_an_escalation_continues_the_stage_and_the_follow_up_needs_its_reason(
    time_skipping_env, sessions
):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        _, handle = await start(
            client, sessions, worker.task_queue, TYPE, started=worker.started_cases
        )
        await wait_for(handle, lambda s: "decide" in s.allowed_actions)
        await handle.execute_update(
            "decide",
            Decide(
                actor="r1",
                role="compliance_reviewer",
                decision="reject",
                reason_code="true_match",
                note="same passport number",
            ),
            result_type=CommandResult,
        )
        state = await wait_for(handle, lambda s: "complete_task" in s.allowed_actions)
        assert state.status != "resolved"  # the rejection did not end the case
        assert state.fields["decisions"]["verdict"]["outcome"] == "rejected"
        assert state.fields["decisions"]["verdict"]["reason_code"] == "true_match"
        assert {e.key: e.status for e in state.elements}["escalation_notice"] == "done"

        wrong = CompleteTaskCmd(actor="r1", role="compliance_reviewer", task_key="follow_up")
        cause = await _refused(handle, "complete_task", wrong)
        assert cause.type == "Invalid" and "reported, closed_no_action" in str(cause)
        bare = wrong.model_copy(update={"outcome": "closed_no_action"})
        cause = await _refused(handle, "complete_task", bare)
        assert cause.type == "Invalid" and "needs a note" in str(cause)
        await handle.execute_update(
            "complete_task",
            bare.model_copy(update={"note": "the client left before onboarding"}),
            result_type=CommandResult,
        )
        state = await wait_for(handle, lambda s: s.status == "resolved")
        assert state.fields["decisions"]["follow_up"]["outcome"] == "closed_no_action"
