"""Continue-as-new: a case whose history grows long (here, an order sent back again and again)
rolls over to a new run at a quiet point and carries on exactly: the same state, the same SLA
deadline, the same pending approval with the votes already given."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from schemas.engine_commands import CommandResult, Decide, SendBackCmd
from schemas.sla_explain import SlaClockView
from schemas.snapshot import CaseSnapshot
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import runs, settled, snapshot, start, wait_for
from tests.engine.readmodel import case_row, events, eventually, task_row
from workers.main import WORKFLOWS, sandbox_runner

LIMIT = 150  # events: a few send-back loops of an order approval
MINUTE = timedelta(minutes=1)


def _order(value: int) -> dict[str, Any]:
    return {"order_id": f"PO-{value}", "order_value": value, "currency": "GBP", "items": 3}


def _waiting_for_approval(visits: int) -> Any:
    def check(s: CaseSnapshot) -> bool:
        return len(s.history) == visits and any(
            e.key == "group_approval" and e.status == "active" for e in s.elements
        )

    return check


def _comparable(s: CaseSnapshot) -> dict[str, Any]:
    """The snapshot without what is computed from the query's own clock."""
    return s.model_dump(exclude={"sla": {"active_seconds", "remaining_seconds", "due_at"}})


async def _sleep_until(env: Any, at: datetime) -> None:
    now = await env.get_current_time()
    assert at > now, f"{at} is already past ({now})"
    await env.sleep(at - now)


async def test_a_case_sent_back_again_and_again_continues_as_new_exactly(
    time_skipping_env, sessions
):
    env, client = time_skipping_env, time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, started = await start(
            client,
            sessions,
            worker.task_queue,
            "order_approval",
            data=_order(60000),  # two approvers
            started=worker.started_cases,
            history_limit=LIMIT,
        )
        case: WorkflowHandle[Any, Any] = client.get_workflow_handle(started.id)  # latest run
        loops = 0
        while True:  # approve once, send back; until the history rolls over
            await wait_for(case, _waiting_for_approval(2 + 2 * loops))
            await settled(case)  # it rolls over at a quiet point: wait for it, do not race it
            if len(await runs(client, case.id)) > 1:
                break
            await case.execute_update(
                "decide",
                Decide(actor="a1", role="case_manager", decision="approve"),
                result_type=CommandResult,
            )
            await settled(case)
            if len(await runs(client, case.id)) > 1:
                break
            await case.execute_update(
                "send_back",
                SendBackCmd(
                    actor="m1", role="case_manager", to_stage="intake", reason=f"loop {loops}"
                ),
                result_type=CommandResult,
            )
            loops += 1
            assert loops < 15, "the case never continued as new"
        assert loops >= 2  # it really grew first

        first, second = await runs(client, case.id)
        old = client.get_workflow_handle(case.id, run_id=first)
        assert (await old.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW
        assert (await case.describe()).status == WorkflowExecutionStatus.RUNNING
        old_length = sum([1 async for _ in old.fetch_history_events()])
        assert old_length >= LIMIT

        before = await old.query("state", result_type=CaseSnapshot)
        after = await wait_for(case, _waiting_for_approval(2 + 2 * loops))
        assert _comparable(after) == _comparable(before)
        assert before.sla is not None and after.sla is not None
        assert before.sla.due_at is not None and after.sla.due_at is not None
        assert abs(after.sla.due_at - before.sla.due_at) < timedelta(seconds=1)
        clock_before = await old.query("sla_clock", result_type=SlaClockView)
        clock_after = await case.query("sla_clock", result_type=SlaClockView)
        assert clock_after == clock_before
        votes = [v.actor for v in after.approvals]
        assert votes in ([], ["a1"])  # it rolled over before or after the first vote

        # The SLA of the approval visit warns at the same instant it would have (80% of 8h).
        entered = after.history[-1].entered_at
        warn_at = entered + timedelta(hours=8) * 0.8
        await _sleep_until(env, warn_at - MINUTE)
        assert [e for e in await events(sessions, ref, "sla_warning")] == []
        await _sleep_until(env, warn_at + MINUTE)
        warned = await eventually(
            lambda: events(sessions, ref, "sla_warning"), lambda rows: len(rows) == 1
        )
        assert warned[0].detail["stage"] == "approval"
        state = await snapshot(case)
        assert state.sla is not None and state.sla.state == "warning"

        # The pending approval can still be given, by people who did not vote yet.
        for actor in [a for a in ("a1", "a2") if a not in votes]:
            await case.execute_update(
                "decide",
                Decide(actor=actor, role="case_manager", decision="approve"),
                result_type=CommandResult,
            )
        done = await wait_for(case, lambda s: s.status == "resolved")
        assert [h.stage for h in done.history] == [
            *(["intake", "approval"] * (loops + 1)),
            "fulfilment",
        ]
        assert [h.seq for h in done.history] == list(range(1, 2 * loops + 4))
        approval = await eventually(
            lambda: task_row(sessions, ref, "group_approval"), lambda r: r is not None and r.done
        )
        assert approval is not None and approval.outcome == "approved"
        assert [v["actor"] for v in approval.votes or []] == ["a1", "a2"]

        # Nothing was said twice: one approval request per visit, one send-back per loop.
        requested = await events(sessions, ref, "approval_requested")
        assert len(requested) == loops + 1
        assert len(await events(sessions, ref, "sent_back")) == loops
        assert len(await events(sessions, ref, "case_opened")) == 1
        row = await eventually(
            lambda: case_row(sessions, ref), lambda r: r is not None and r.status == "resolved"
        )
        assert row is not None and row.stage == "fulfilment"

    # Both runs replay on this code: the roll-over is deterministic.
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        workflow_runner=sandbox_runner(),
        data_converter=pydantic_data_converter,
    )
    for run_id in (first, second):
        history = await client.get_workflow_handle(case.id, run_id=run_id).fetch_history()
        await replayer.replay_workflow(history)
