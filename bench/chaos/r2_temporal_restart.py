"""R2: restart the Temporal server (SQLite file persistence) mid-run, gently and with kill -9."""

from __future__ import annotations

import asyncio

from .harness import Run, Scenario

DOWN_SECONDS = 10


async def inject(run: Run) -> None:
    await run.until_cases_opened(0.3)
    for hard in (False, True):
        await asyncio.sleep(run.rng.uniform(5, 15))
        run.fault(f"Temporal server {'kill -9' if hard else 'stopped (SIGTERM)'}")
        await run.stack.stop_temporal(hard=hard)
        await asyncio.sleep(DOWN_SECONDS)
        await run.stack.start_temporal()
        run.log(f"Temporal server back (down {DOWN_SECONDS} s + start-up)")


SCENARIO = Scenario(
    key="R2",
    title="Temporal restart (SIGTERM, kill -9)",
    what=(
        "The Temporal dev server, persisting to its SQLite file, is stopped twice while cases "
        f"run: once with SIGTERM, once with kill -9, each time down for {DOWN_SECONDS} s "
        "before it starts again on the same file. Worker and API stay up and must reconnect; "
        "API calls meanwhile must get 503 with Retry-After."
    ),
    default_cases=200,
    inject=inject,
)
