"""R1: kill -9 the worker 10 times at random moments while 200 cases run."""

from __future__ import annotations

import asyncio

from .harness import Run, Scenario

KILLS = 10


async def inject(run: Run) -> None:
    await run.until_cases_opened(0.25)
    for i in range(KILLS):
        await asyncio.sleep(run.rng.uniform(3, 10))
        pid = await run.stack.kill_worker()
        run.fault(f"kill -9 worker pid {pid} ({i + 1}/{KILLS})")
        await asyncio.sleep(run.rng.uniform(0.5, 3))  # the supervisor's restart delay
        run.stack.start_worker()
        run.log(f"worker restarted, pid {run.stack.worker.pid}")


SCENARIO = Scenario(
    key="R1",
    title="worker kill -9 x10",
    what=(
        f"{KILLS} times, at random moments (3-10 s apart, once a quarter of the cases are "
        "open), the worker process gets SIGKILL and is started again 0.5-3 s later, as a "
        "supervisor would. Activities in flight die mid-call (a provider send, a Postgres "
        "write); workflow tasks move to the new worker after their sticky timeout."
    ),
    default_cases=200,
    inject=inject,
)
