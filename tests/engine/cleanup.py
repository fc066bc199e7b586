"""A worker for engine tests that ends its cases cleanly before it stops.

``tests.conftest.running_worker`` closes leftovers with the frozen workflow's ``cancel``
(``CancelCase``), which an engine case refuses, so it terminates them. Terminating a case
while one of its activities is in flight strands that activity, and the time-skipping server
then never skips time again (every later ``env.sleep`` times out). So here: an open engine
case is cancelled with the engine's own command and run to its end; a resolved one is left
only once nothing of it is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from core.settings import Settings
from schemas.engine_commands import CancelCaseCmd, CommandResult
from store.db import SessionFactory
from tests.conftest import RunningWorker, running_worker
from tests.engine.helpers import snapshot
from tests.waiting import eventually


async def _quiet(handle: WorkflowHandle[Any, Any], timeout: float = 30) -> None:
    """Until the case is over or has no activity in flight (fails the test otherwise)."""

    async def settled() -> bool:
        described = await handle.describe()
        return (
            described.status != WorkflowExecutionStatus.RUNNING
            or not described.raw_description.pending_activities
        )

    await eventually(settled, what=f"{handle.id} to have no activity in flight", timeout=timeout)


async def end_case(handle: WorkflowHandle[Any, Any]) -> None:
    """Cancel an open engine case (its own command) and wait for it; settle a resolved one."""
    if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
        return
    state = await snapshot(handle)
    if state.status not in ("resolved", "closed", "cancelled"):
        with contextlib.suppress(Exception):  # a bounded wait: an update can be held forever
            await asyncio.wait_for(
                handle.execute_update(
                    "cancel",
                    CancelCaseCmd(actor="test", role="admin", closure_code="other", reason="done"),
                    result_type=CommandResult,
                ),
                timeout=30,
            )
            await asyncio.wait_for(handle.result(), timeout=30)
    await _quiet(handle)


@asynccontextmanager
async def engine_worker(
    client: Client, sessions: SessionFactory, settings: Settings | None = None
) -> AsyncIterator[RunningWorker]:
    async with running_worker(client, sessions, settings) as worker:
        passed = False
        try:
            yield worker
            passed = True
        finally:
            stuck: list[str] = []
            for handle in list(worker.started_cases):
                try:
                    await end_case(handle)
                except Exception as exc:  # reported below, after every case
                    stuck.append(f"{handle.id}: {exc}")
            # a failing test keeps its own error; a passing one must not hide a stuck case
            # (it would stall every later test on the shared time-skipping server)
            if stuck and passed:
                raise AssertionError("cases not ended cleanly: " + "; ".join(stuck))
