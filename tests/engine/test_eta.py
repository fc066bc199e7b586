"""The case's ETA comes from the estimate_eta activity (never from workflow code): at open and
at each stage, shown in the client's acknowledgement, the state and the read model. With no
history for the case type it is the sum of the route's budgets, and it says so."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from schemas.engine_commands import CommandResult, Decide
from store.db import SessionFactory
from store.models import Case, NotificationRow
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import registry, start, wait_for
from tests.waiting import eventually

ORDER = {"order_id": "PO-ETA", "order_value": 60000, "currency": "GBP", "items": 1}


async def test_the_eta_is_estimated_at_open_and_again_at_each_stage(
    time_skipping_env: Any, sessions: SessionFactory
) -> None:
    env = time_skipping_env
    budgets = sum(
        (s.sla for s in registry().get("order_approval").stages if s.sla is not None),
        timedelta(0),
    )
    async with engine_worker(env.client, sessions) as worker:
        ref, handle = await start(
            env.client,
            sessions,
            worker.task_queue,
            "order_approval",
            data=ORDER,
            started=worker.started_cases,
        )
        state = await wait_for(
            handle,
            lambda s: (
                s.eta is not None
                and s.stage == "approval"
                and (s.eta.estimated_at or s.eta.p50) >= s.history[-1].entered_at
            ),
        )
        assert state.eta is not None and state.eta.basis == "budgets"  # no history for orders
        opened = state.history[0].entered_at

        async def row() -> Case | None:
            async with sessions() as s:
                return await s.get(Case, ref, populate_existing=True)

        case = await eventually(row, lambda c: c is not None and c.eta_at is not None, what="eta")
        assert case is not None and case.eta_basis == "budgets"
        # at the approval stage: what is left of approval's budget and fulfilment's
        entered = state.history[-1].entered_at
        left = budgets - (registry().get("order_approval").stages[0].sla or timedelta(0))
        assert abs(state.eta.p50 - (entered + left)) < timedelta(minutes=1)
        assert state.eta.p10 <= state.eta.p50 <= state.eta.p90
        first_estimate = state.eta.estimated_at

        for actor in ("a1", "a2"):
            await handle.execute_update(
                "decide", Decide(actor=actor, decision="approve"), result_type=CommandResult
            )
        state = await wait_for(  # re-estimated when fulfilment began
            handle,
            lambda s: (
                s.eta is not None
                and s.stage == "fulfilment"
                and s.eta.estimated_at != first_estimate
            ),
        )

        # the acknowledgement told the client the same estimate the case made at open
        async with sessions() as s:
            ack = await s.scalar(
                select(NotificationRow)
                .where(NotificationRow.case_ref == ref, NotificationRow.channel == "in_app")
                .order_by(NotificationRow.id)
            )
        assert ack is not None and (opened + budgets).strftime("%-d %B %Y") in ack.body_text
