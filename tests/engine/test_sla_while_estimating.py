"""A stage's SLA runs on time even while its ETA is still being asked.

At scale the ``estimate_eta`` activity can wait minutes behind a busy activity queue
(docs/BENCHMARKS.md, "Scale"). The case used to ask it before it reached the place where it
waits, so no SLA timer existed meanwhile and every warning and escalation of the stage fired
late, all at once. Patch ``eta-while-waiting``: the estimate is asked while the case waits,
with its SLA timers armed. Real time here (a dev server): the time-skipping server does not
skip while an activity is in flight, which is the very situation under test.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from activities.eta import EtaActivities
from schemas.engine_commands import CancelCaseCmd, CommandResult
from schemas.eta import ESTIMATE_ETA, EstimateEtaInput, EtaEstimate
from store.db import SessionFactory
from store.models import CaseEvent, StageIntervalRow
from tests.conftest import test_settings
from tests.engine.cleanup import end_case
from tests.engine.helpers import registry, start, wait_for
from tests.waiting import eventually
from workers.main import WORKFLOWS, build_activities, sandbox_runner

ORDER = {"order_id": "PO-SLOW-ETA", "order_value": 100, "currency": "GBP", "items": 1}
BUDGET = timedelta(seconds=4)


def held_estimate_worker(client: Any, sessions: SessionFactory, release: asyncio.Event) -> Worker:
    """A worker whose ``estimate_eta`` answers only once ``release`` is set (a queue minutes
    deep, as the scale bench saw it); every other activity is the real one."""
    real_estimate = EtaActivities(sessions).estimate_eta

    @activity.defn(name=ESTIMATE_ETA)
    async def held_estimate(inp: EstimateEtaInput) -> EtaEstimate:
        await release.wait()
        result: EtaEstimate = await real_estimate(inp)
        return result

    activities = [
        a
        for a in build_activities(test_settings(), sessions, client)
        if getattr(a, "__name__", "") != real_estimate.__name__
    ]
    return Worker(
        client,
        task_queue=f"tq-{uuid.uuid4().hex[:10]}",
        workflows=list(WORKFLOWS),
        activities=[*activities, held_estimate],
        workflow_runner=sandbox_runner(),
    )


def quick_orders() -> Any:
    """order_approval with a 4-second intake SLA: warn at half, escalate at the breach."""
    ct = registry().get("order_approval")
    intake = ct.stages[0].model_copy(update={"sla": BUDGET, "warn_at": [0.5]})
    return ct.model_copy(update={"stages": [intake, *ct.stages[1:]]})


async def test_sla_milestones_fire_on_time_while_the_estimate_is_held(
    dev_server_env: Any, sessions: SessionFactory
) -> None:
    env = dev_server_env
    release = asyncio.Event()
    async with held_estimate_worker(env.client, sessions, release) as worker:
        ref, handle = await start(
            env.client,
            sessions,
            worker.task_queue,
            "order_approval",
            data=ORDER,
            case_type_def=quick_orders(),
        )
        try:

            async def milestones() -> dict[str, Any]:
                async with sessions() as s:
                    rows = (
                        await s.execute(
                            select(CaseEvent.kind, CaseEvent.occurred_at).where(
                                CaseEvent.case_ref == ref,
                                CaseEvent.kind.in_(("sla_warning", "sla_breached")),
                            )
                        )
                    ).all()
                return {kind: at for kind, at in rows}

            # the estimate is still held, yet the warning and the breach are written
            fired = await eventually(milestones, lambda m: len(m) == 2, what="SLA milestones")
            state = await wait_for(handle, lambda s: s.stage == "intake")
            assert state.eta is None  # nothing has answered the estimate yet
            async with sessions() as s:
                entered = await s.scalar(
                    select(StageIntervalRow.entered_at).where(
                        StageIntervalRow.case_ref == ref, StageIntervalRow.stage == "intake"
                    )
                )
            assert entered is not None
            # each at its due time (recorded when it fired, not when it was written)
            late_warning = fired["sla_warning"] - (entered + BUDGET / 2)
            late_breach = fired["sla_breached"] - (entered + BUDGET)
            assert timedelta(0) <= late_warning < timedelta(seconds=2), late_warning
            assert timedelta(0) <= late_breach < timedelta(seconds=2), late_breach

            release.set()  # the answer comes in late: the case goes on with it
            state = await wait_for(handle, lambda s: s.eta is not None)
            assert state.eta is not None and state.eta.basis == "budgets"
            await wait_for(handle, lambda s: s.stage != "intake" or s.status == "resolved")
        finally:
            release.set()
            await end_case(handle)


async def test_a_cancel_while_the_estimate_is_held_abandons_it_and_replays(
    dev_server_env: Any, sessions: SessionFactory
) -> None:
    """Patch ``eta-abandon``: a command that ends the stage while its ETA is still being asked
    drops the question without a cancel request to the server (one racing the activity's
    completion wedged the command on the time-skipping server); the case ends at once, the
    late answer changes nothing, and the history replays."""
    env = dev_server_env
    release = asyncio.Event()
    async with held_estimate_worker(env.client, sessions, release) as worker:
        _, handle = await start(
            env.client, sessions, worker.task_queue, "order_approval", data=ORDER
        )
        try:

            async def estimating() -> bool:
                described = await handle.describe()
                pending = described.raw_description.pending_activities
                return any(p.activity_type.name == ESTIMATE_ETA for p in pending)

            await eventually(estimating, what="the stage's estimate to be in flight")
            done = await asyncio.wait_for(
                handle.execute_update(
                    "cancel",
                    CancelCaseCmd(
                        actor="cm", role="case_manager", closure_code="other", reason="x"
                    ),
                    result_type=CommandResult,
                ),
                timeout=20,
            )
            assert done.message == "cancelled by cm (other)", done
            state = await wait_for(handle, lambda s: s.status == "cancelled")
            assert state.eta is None  # the question was dropped with the stage
        finally:
            release.set()
            await end_case(handle)
    history = await handle.fetch_history()
    kinds = {e.event_type for e in history.events}
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED not in kinds
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
    )
    await replayer.replay_workflow(history)
