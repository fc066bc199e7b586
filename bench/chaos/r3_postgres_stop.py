"""R3: stop Postgres mid-run (fast shutdown, then kill -9) and start it again."""

from __future__ import annotations

import asyncio

from .harness import Run, Scenario

DOWN_SECONDS = 15


async def inject(run: Run) -> None:
    await run.until_cases_opened(0.3)
    for hard in (False, True):
        await asyncio.sleep(run.rng.uniform(5, 15))
        run.fault(f"Postgres {'postmaster kill -9' if hard else 'fast shutdown (SIGINT)'}")
        await run.stack.stop_postgres(hard=hard)
        await asyncio.sleep(DOWN_SECONDS)
        await run.stack.start_postgres()
        run.log(f"Postgres back (down {DOWN_SECONDS} s + start-up/crash recovery)")


SCENARIO = Scenario(
    key="R3",
    title="Postgres stop (fast, kill -9)",
    what=(
        "Postgres is stopped twice while cases run: a fast shutdown (SIGINT to the "
        "postmaster, as `pg_ctl stop -m fast`), and SIGKILL to the postmaster (crash recovery "
        f"on the next start); each time down for {DOWN_SECONDS} s. Projections, outbox writes "
        "and account provisioning fail meanwhile and must be retried; API calls must get 503 "
        "with Retry-After."
    ),
    default_cases=200,
    inject=inject,
)
