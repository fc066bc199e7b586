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
