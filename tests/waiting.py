"""Waiting in tests for something that happens in the background: on a condition, never a clock.

A test that needs the worker, the read model or a stand-in to catch up re-reads until the
answer is the one it expects, and fails loudly, naming what it waited for and what it last
saw, once a generous deadline passes. The deadline only costs time when the test fails: a
condition that holds returns at once, so a loaded machine gets slack without slowing a green
run.

Proving that something did *not* happen is not done here by waiting "long enough": tests do it
with time-skipping (advance the clock to just before the moment, then look) or by first waiting
for an event ordered after the one that must not happen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0  # seconds; generous on purpose (see above)
INTERVAL = 0.05


def _truthy(value: Any) -> bool:
    return bool(value)


async def eventually(
    read: Callable[[], Awaitable[T]],
    check: Callable[[T], bool] = _truthy,
    *,
    what: str = "the expected state",
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = INTERVAL,
) -> T:
    """Re-run ``read`` until ``check`` holds on its answer; return that answer.

    Fails with ``AssertionError`` naming ``what`` and the last answer once ``timeout`` passes.
    With no ``check`` the answer itself must be truthy.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await read()
        if check(value):
            return value
        if loop.time() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {what}; last seen: {value!r}"
            )
        await asyncio.sleep(interval)


async def until(
    condition: Callable[[], bool], *, what: str, timeout: float = DEFAULT_TIMEOUT
) -> None:
    """``eventually`` for a plain (non-async) condition, e.g. on a stand-in's request log."""

    async def read() -> bool:
        return condition()

    await eventually(read, what=what, timeout=timeout)


_ACTIVITY_CLOSED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}
_RUN_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}


async def in_flight(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """What the workflow has in flight, from its history: an unfinished workflow task (local
    activities run inside one), and every activity scheduled and not yet finished (retries
    included). Empty once it is idle, or over."""
    history = await handle.fetch_history()
    if history.events and history.events[-1].event_type in _RUN_CLOSED:
        return []
    activities: dict[int, str] = {}
    task_open = False
    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            activities[event.event_id] = name
        elif kind in _ACTIVITY_CLOSED:
            attributes = getattr(event, _ACTIVITY_CLOSED[kind])
            activities.pop(attributes.scheduled_event_id, None)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            task_open = True
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            task_open = False
        # a failed or timed-out workflow task is retried: it stays open
    return (["workflow task"] if task_open else []) + [f"activity {n}" for n in activities.values()]


async def until_idle(handle: WorkflowHandle[Any, Any], *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Until the workflow has nothing in flight (see ``in_flight``).

    The positive event to wait for before asserting that a side effect did *not* happen: a
    workflow schedules what it queued in the same task that queued it, so once it is idle
    every side effect asked for so far has run, and what is absent now was never asked for
    (until the next signal, update or timer).
    """
    await eventually(
        lambda: in_flight(handle),
        lambda pending: not pending,
        what=f"{handle.id} to have nothing in flight",
        timeout=timeout,
    )
