"""R4: SendGrid, Twilio and the webhook receiver fail at random: 429, 500, timeouts, 400."""

from __future__ import annotations

import asyncio

from .harness import Run, Scenario

PROBABILITY = 0.25
STATUSES = (429, 500, 400)
STALL_SECONDS = 12.0  # past the adapters' 10 s timeout: the client gives up, the stand-in accepts
MAX_FAULT_SECONDS = 900  # faults end by then even if cases are not all resolved


async def inject(run: Run) -> None:
    standins = (run.stack.sendgrid, run.stack.twilio, run.stack.hooks)
    for standin in standins:
        standin.set_fault_profile(
            PROBABILITY,
            statuses=STATUSES,
            stall_seconds=STALL_SECONDS,
            seed=run.rng.randrange(2**32),
        )
    run.fault(
        f"providers fail {PROBABILITY:.0%} of requests: {', '.join(map(str, STATUSES))} "
        f"or a {STALL_SECONDS:.0f} s stall"
    )
    driver = run.driver
    for _ in range(MAX_FAULT_SECONDS):
        if driver.done() + sum(1 for c in driver.cases if c.gave_up) >= len(driver.cases):
            break
        await asyncio.sleep(1)
    for standin in standins:
        standin.clear_fault_profile()
    run.log("providers healthy again")


SCENARIO = Scenario(
    key="R4",
    title="providers: 429, 500, timeout, 400",
    what=(
        f"From the start until every case is resolved (at most {MAX_FAULT_SECONDS} s), each "
        "request to the SendGrid, Twilio and webhook stand-ins fails with probability "
        f"{PROBABILITY}: a 429, a 500, a permanent 400 or a {STALL_SECONDS:.0f} s stall, "
        "equally likely. A stall outlasts the senders' "
        "10 s timeout, after which the stand-in accepts the message: the sender saw a timeout "
        "but the provider has it (the case that produced duplicates before). Then providers "
        "are healthy and the outbox must settle. Faults hit every request, lookups included."
    ),
    default_cases=200,
    inject=inject,
)
