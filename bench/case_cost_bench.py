"""Cost and throughput of one onboarding case, against raw Temporal, measured in one run.

    .venv/bin/python bench/case_cost_bench.py [--cases 40] [--concurrency 8] [--write-docs]

Both sides run on the same in-memory dev server and the same worker process:
- **raw**: a bare workflow with one no-op activity per stage (6), the floor any Temporal
  implementation of this process pays;
- **engine** and **frozen**: a standard case driven to completion (documents waived,
  straight-through compliance, final sign-off), with real Postgres projection, screening,
  notifications to the local outbox and webhooks skipped.
It reports cases/s (and the ratio ours/raw), history events and bytes per case, and the
billable actions per case by kind (Temporal Cloud bills workflow starts, activities incl.
local ones, timers, signals, updates and search-attribute upserts; ~$50 per million).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raw_workflow import RawSixStages, noop
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

POLL = float(os.environ.get("BENCH_POLL", "0.05"))  # how often the bench looks at a case
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/ helpers (profile, waiver, fixture lists) are reused


BILLABLE = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "workflow start",
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activity",
    EventType.EVENT_TYPE_TIMER_STARTED: "timer",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "signal",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "update",
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: "search-attribute upsert",
}


async def one_history(handle: WorkflowHandle[Any, Any]) -> tuple[int, int, Counter[str]]:
    history = await handle.fetch_history()
    actions: Counter[str] = Counter()
    for event in history.events:
        if event.event_type in BILLABLE:
            actions[BILLABLE[event.event_type]] += 1
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            name = event.marker_recorded_event_attributes.marker_name
            if name == "core_local_activity":
                actions["local activity"] += 1
    size = len(history.to_json().encode())
    return len(history.events), size, actions


@dataclass
class Profile:
    """Per case, over every case of a side: the mean, and the worst case."""

    events: float
    size: float
    actions: float
    by_kind: dict[str, float]
    max_size: int
    max_actions: int


async def history_profile(handles: list[WorkflowHandle[Any, Any]]) -> Profile:
    runs = [await one_history(h) for h in handles]
    n = len(runs)
    kinds: Counter[str] = Counter()
    for _, _, a in runs:
        kinds.update(a)
    return Profile(
        events=sum(r[0] for r in runs) / n,
        size=sum(r[1] for r in runs) / n,
        actions=sum(sum(r[2].values()) for r in runs) / n,
        by_kind={k: v / n for k, v in kinds.items()},
        max_size=max(r[1] for r in runs),
        max_actions=max(sum(r[2].values()) for r in runs),
    )


async def run_raw(client: Client, queue: str, n: int, concurrency: int) -> tuple[float, Any]:
    sem = asyncio.Semaphore(concurrency)
    handles: list[WorkflowHandle[Any, Any]] = []

    async def one(i: int) -> None:
        async with sem:
            h = await client.start_workflow(
                RawSixStages.run, f"raw-{i}", id=f"raw-{uuid.uuid4().hex}", task_queue=queue
            )
            handles.append(h)
            await h.result()

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - start, handles


async def run_frozen(client: Client, queue: str, n: int, concurrency: int) -> tuple[float, Any]:
    """The pre-engine workflow (still registered, frozen, for the cases opened before it)."""
    from schemas.case import CaseInput, workflow_id_for
    from schemas.commands import FinalSignOff
    from schemas.enums import Stage
    from tests.factories import profile, wait_for_state, waived_documents
    from workflows.onboarding import OnboardingCaseWorkflow as Wf

    sem = asyncio.Semaphore(concurrency)
    handles: list[WorkflowHandle[Any, Any]] = []

    async def one(i: int) -> None:
        async with sem:
            ref = f"B-{uuid.uuid4().hex[:12]}"
            h = await client.start_workflow(
                Wf.run,
                CaseInput(case_ref=ref, client=profile(), requested_by="bench"),
                id=workflow_id_for(ref),
                task_queue=queue,
            )
            handles.append(h)
            await wait_for_state(h, lambda s: s.stage == Stage.DOCUMENT_COLLECTION, timeout=60)
            await h.signal(Wf.documents_received, waived_documents())
            await wait_for_state(h, lambda s: s.stage == Stage.FINAL_REVIEW, timeout=60)
            await h.execute_update(Wf.sign_off, FinalSignOff(reviewer="bench"))
            await h.result()

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - start, handles


async def run_engine(
    client: Client, queue: str, n: int, concurrency: int, sessions: Any
) -> tuple[float, Any]:
    """A standard client_onboarding case on the engine, driven like a case manager would:
    waive the documents, straight-through compliance, final sign-off; resolved, then closed by
    the lifecycle timer (shortened to 1 s so the bench sees the whole case, timer included).
    Throughput counts to resolution (the process is done; closing is a timer days later);
    history and actions are counted on the closed case."""
    from datetime import timedelta

    from playbooks.registry import CaseTypeRegistry, pinned_subprocess_types
    from schemas.contracts import CASE_WORKFLOW, EngineCaseInput
    from schemas.engine_commands import CommandResult, Decide, WaiveDocuments
    from schemas.snapshot import CaseSummary
    from store.cases import insert_draft_case
    from tests.factories import profile

    registry = CaseTypeRegistry.load()
    base = registry.get("client_onboarding")
    quick_close = base.lifecycle.model_copy(update={"close_after": timedelta(seconds=1)})
    case_type = base.model_copy(update={"lifecycle": quick_close})
    who = profile()
    subtypes = pinned_subprocess_types(  # as the API pins them: none for an individual
        registry, base, client=profile().model_dump(mode="json"), data={}
    )
    sem = asyncio.Semaphore(concurrency)
    handles: list[WorkflowHandle[Any, Any]] = []

    async def until(h: WorkflowHandle[Any, Any], ok: Any) -> None:
        for _ in range(1200):
            if ok(await h.query("summary", result_type=CaseSummary)):
                return
            await asyncio.sleep(POLL)
        raise TimeoutError("case did not get there")

    async def one(i: int) -> None:
        async with sem:
            ref = f"E-{uuid.uuid4().hex[:12]}"
            async with sessions.begin() as s:  # the draft row first, as POST /cases writes it
                await s.execute(
                    insert_draft_case(
                        ref=ref,
                        client=who,
                        requested_by="bench",
                        case_type=case_type.name,
                        case_type_version=case_type.version,
                        engine="case",
                        workflow_id=f"onboarding-{ref}",
                        first_stage=case_type.stages[0].key,
                    )
                )
            h = await client.start_workflow(
                CASE_WORKFLOW,
                EngineCaseInput(
                    case_ref=ref,
                    workflow_id=f"onboarding-{ref}",
                    case_type=case_type,
                    client=who,
                    requested_by="bench",
                    subprocess_types=subtypes,  # pinned as the API pins them
                    row_exists=True,
                ),
                id=f"onboarding-{ref}",
                task_queue=queue,
            )
            handles.append(h)
            await until(h, lambda s: "waive_documents" in s.allowed_actions)
            await h.execute_update(
                "waive_documents",
                WaiveDocuments(actor="bench-cm", note="originals seen"),
                result_type=CommandResult,
            )
            await until(h, lambda s: "decide" in s.allowed_actions)
            await h.execute_update(
                "decide", Decide(actor="bench-lead", decision="approve"), result_type=CommandResult
            )
            await until(h, lambda s: s.status == "resolved")

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - start  # to resolution: the case's work is done
    await asyncio.gather(*(h.result() for h in handles))  # closed: history complete
    return elapsed, handles


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // (1024 * 1024)
    except OSError:
        mem = 0
    return f"{os.cpu_count()} cores, {cpu}, {mem} GiB RAM, Python {platform.python_version()}"


async def main(cases: int, concurrency: int, write_docs: bool) -> None:
    from core.codec import data_converter, new_key_entry
    from store.db import make_engine, make_session_factory
    from store.embedded import start_embedded_postgres
    from store.migrate import upgrade_head
    from tests.conftest import test_settings, venv_binary
    from workers.main import build_worker, sandbox_runner
    from workflows.search_attributes import ALL

    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_embedded_postgres(Path(tmp) / "pg", database="bench")
        await asyncio.to_thread(upgrade_head, url)
        engine = make_engine(url)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=venv_binary("temporal"),
            data_converter=pydantic_data_converter,
            search_attributes=list(ALL),
            ui=False,
            dev_server_log_level="error",
        )
        try:
            queue = f"bench-{uuid.uuid4().hex[:6]}"
            sessions = make_session_factory(engine)
            ours_worker = build_worker(env.client, test_settings(), sessions, task_queue=queue)
            raw_worker = Worker(
                env.client,
                task_queue=queue + "-raw",
                workflows=[RawSixStages],
                activities=[noop],
                workflow_runner=sandbox_runner(),
            )
            # the same engine with the payload codec on (PAYLOAD_KEYS), on its own queue
            sealed = await Client.connect(
                env.client.service_client.config.target_host,
                namespace=env.client.namespace,
                data_converter=data_converter(new_key_entry("bench")),
            )
            sealed_worker = build_worker(
                sealed, test_settings(), sessions, task_queue=queue + "-enc"
            )
            async with ours_worker, raw_worker, sealed_worker:
                await run_raw(env.client, queue + "-raw", 5, concurrency)  # warm-up
                await run_engine(env.client, queue, 3, concurrency, sessions)
                await run_frozen(env.client, queue, 3, concurrency)
                await run_engine(sealed, queue + "-enc", 3, concurrency, sessions)
                raw_s, raw_h = await run_raw(env.client, queue + "-raw", cases, concurrency)
                eng_s, eng_h = await run_engine(env.client, queue, cases, concurrency, sessions)
                frz_s, frz_h = await run_frozen(env.client, queue, cases, concurrency)
                enc_s, enc_h = await run_engine(
                    sealed, queue + "-enc", cases, concurrency, sessions
                )
                raw = await history_profile(raw_h)
                eng = await history_profile(eng_h)
                frz = await history_profile(frz_h)
                enc = await history_profile(enc_h)
        finally:
            await env.shutdown()
            await engine.dispose()
            server.cleanup()

    rate = {"raw": cases / raw_s, "engine": cases / eng_s, "frozen": cases / frz_s}
    sealed_rate = cases / enc_s

    def row(label: str, r: float, e: float, f: float, fmt: str) -> str:
        return f"| {label} | {fmt.format(r)} | {fmt.format(e)} | {fmt.format(f)} | {e / r:.2f}x |"

    def kinds(p: Profile) -> str:
        return ", ".join(
            f"{k} {v:.1f}".replace(".0", "")
            for k, v in sorted(p.by_kind.items(), key=lambda kv: -kv[1])
        )

    lines = [
        "## Case cost and throughput (ours vs raw Temporal)",
        "",
        f"Date: {time.strftime('%Y-%m-%d')}. Machine: {machine()}. In-memory dev server, one "
        f"worker process, {cases} cases per side, {concurrency} at a time, all three measured in "
        "one run (`bench/case_cost_bench.py`). History and actions are the mean over every case "
        "of a side; the worst case is given too.",
        "",
        "| | raw six-activity workflow | engine (`CaseWorkflow`) | frozen pre-engine workflow "
        "| engine / raw |",
        "|---|---:|---:|---:|---:|",
        row("cases per second", rate["raw"], rate["engine"], rate["frozen"], "{:.1f}"),
        row("history events per case", raw.events, eng.events, frz.events, "{:.0f}"),
        row(
            "history size per case (KiB)",
            raw.size / 1024,
            eng.size / 1024,
            frz.size / 1024,
            "{:.1f}",
        ),
        row(
            "worst history size (KiB)",
            raw.max_size / 1024,
            eng.max_size / 1024,
            frz.max_size / 1024,
            "{:.1f}",
        ),
        row("billable actions per case", raw.actions, eng.actions, frz.actions, "{:.1f}"),
        row("worst billable actions", raw.max_actions, eng.max_actions, frz.max_actions, "{:.0f}"),
        "",
        f"Billable actions of a standard engine case by kind: {kinds(eng)} (about "
        f"${eng.actions * 50 / 1000:.2f} per 1,000 cases at $50 per million actions; the frozen "
        f"workflow: {kinds(frz)}).",
        "",
        "The engine's standard case: documents waived by a case manager (one update),",
        "straight-through compliance (screening clear, risk low), account provisioned, final",
        "sign-off (one update), welcome message, resolved, closed by the lifecycle timer (1 s in",
        "the bench instead of 7 days; it is counted in actions and history; the throughput runs",
        "to resolution, when the process is done). Where its actions go: one activity",
        "per external effect (screening, provisioning); messages leave in batches on the outbox",
        "lane, one activity per batch; the read-model projection rides on a batch when one leaves",
        "(else one local activity when the case next waits); search attributes are upserted",
        "together, only when the case waits with a changed stage/status/SLA state; one timer per",
        "SLA deadline. The throughput includes the bench's own polling of the state query.",
        "",
        "Payload encryption (`PAYLOAD_KEYS`, AES-256-GCM on every payload, issue #11), same",
        "run, same engine case on its own task queue (measured last, after the other three",
        "sides; the codec runs in the one worker process, which is the bottleneck already, on",
        "every payload the worker and the bench's client encode or decode, state queries",
        "included):",
        "",
        "| | engine, plaintext payloads | engine, encrypted payloads | encrypted / plaintext |",
        "|---|---:|---:|---:|",
        f"| cases per second | {rate['engine']:.1f} | {sealed_rate:.1f} | "
        f"{sealed_rate / rate['engine']:.2f}x |",
        f"| history size per case (KiB) | {eng.size / 1024:.1f} | {enc.size / 1024:.1f} | "
        f"{enc.size / eng.size:.2f}x |",
        f"| billable actions per case | {eng.actions:.1f} | {enc.actions:.1f} | "
        f"{enc.actions / eng.actions:.2f}x |",
        "",
        "Throughput is below the 0.5x goal of issue #10 (history and actions meet theirs).",
        "Profiled on 2026-11-30 (py-spy --gil, yappi, getrusage): the bottleneck is the one",
        "Python process that hosts the worker (and the bench's client) at ~90% of a core, while",
        "the dev server uses ~55% and Postgres little. It spends ~280 ms of CPU per engine case",
        "against ~55 ms per raw case: the notification outbox ~90 ms (Jinja2 rendering plus",
        "several ORM transactions per message and channel), screening and provisioning with",
        "their audit rows, the read-model writes, and the SDK's fixed cost per workflow",
        "activation (payload visiting and serialisation context, ~45% of the workflow threads'",
        "CPU) over ~17 activations. What would close the gap: a set-based outbox write (one",
        "statement per batch instead of per-message units of work), fewer activations per case,",
        "and more worker processes (issue #15).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if write_docs:
        path = REPO / "docs" / "BENCHMARKS.md"
        body = path.read_text()
        marker = "## Case cost and throughput"
        if marker in body:
            head, _, rest = body.partition(marker)
            nxt = rest.find("\n## ")
            body = head + text + (rest[nxt + 1 :] if nxt >= 0 else "")
        else:
            body = body.rstrip() + "\n\n" + text
        path.write_text(body)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.cases, args.concurrency, args.write_docs))
