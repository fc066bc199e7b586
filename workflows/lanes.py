"""Side effects that must happen, in order, without holding up the case.

A notification retried for minutes while SendGrid is down, or a webhook backing off towards its
dead letter, must not stop a case from moving to its next stage. A ``Lane`` runs queued calls
one at a time in the background (so a client's messages keep their order) and is drained before
the workflow completes. Deterministic: it only uses workflow-safe asyncio.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from temporalio import workflow


class Lane:
    def __init__(self) -> None:
        self._queue: deque[Callable[[], Awaitable[None]]] = deque()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def put(self, call: Callable[[], Awaitable[None]]) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        self._queue.append(call)

    async def _run(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self._queue) or self._closing)
            if not self._queue:
                return
            await self._queue.popleft()()

    async def drain(self) -> None:
        """Finish everything queued; call once, at the end of the case."""
        self._closing = True
        if self._task is not None:
            await self._task
