"""Scale: N open cases on one worker, with minute SLAs, on the real stack (issue #15).

    .venv/bin/python bench/scale_bench.py [--cases 10000] [--concurrency 32] [--write-docs]
                                          [--worker-env WORKER_MAX_CACHED_WORKFLOWS=12000 ...]

The stack is the one production runs, as processes (``bench/chaos/procs.py``): Postgres (the
``pgserver`` binaries), the Temporal dev server persisted to a SQLite file (``--db-filename``),
one ``onboarding worker`` and one ``onboarding api``. Cases are ``demo_onboarding``
(``playbooks/demo``: client onboarding with an hour shrunk to 5 s, no business calendar): each
waits in document collection, nobody acts, so every case goes at risk at 72 s, warns at 96 s,
breaches and escalates (level 1) at 120 s and escalates to level 2 at 140 s after it entered
the stage. Payloads are encrypted (``PAYLOAD_KEYS``), as ``make run`` and production do;
messages go to the local outbox (no provider configured), webhooks are off.

It reports:
- create throughput, and ``POST /cases`` latency p50/p99 beside the latency of the Temporal
  start alone: the same ``EngineCaseInput`` (built by the API's own helpers) started with the
  SDK's ``client.start_workflow`` at the same concurrency, in blocks interleaved with the API
  blocks (on a task queue no worker polls, so those workflows add no worker load);
- worker RSS after creation and at steady state (every SLA milestone fired and written);
- the lateness of every SLA milestone: fired (the workflow's time, ``case_events.occurred_at``)
  minus due (``stage_intervals.entered_at`` of document collection + budget x fraction, or
  budget + ``after_breach`` for an escalation; 24/7, since the case type has no calendar);
- ``GET /cases`` and ``GET /dashboard`` p95, read one after the other every second all along;
- where the waits are, from the Temporal histories of a sample of cases (timer fired vs due,
  timer fired to task picked up, a new case's first task, activity scheduled to started).

``--api-only`` starts no worker and stops after the creation phase: a quick look at
``POST /cases`` against the SDK start, with the API's and the server's CPU per start.
``--sqlite-pragma journal_mode=wal`` (repeatable) tunes the dev server's SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # bench/chaos/procs.py and the product's own modules

import httpx  # noqa: E402
import psutil  # noqa: E402

from bench.chaos.procs import Child, Postgres, Temporal, free_port  # noqa: E402

DOC = REPO / "docs" / "BENCHMARKS.md"
TITLE = "## Scale"
CASE_TYPE = "demo_onboarding"
STAGE = "document_collection"
TASK_QUEUE = "scale"
SDK_QUEUE = "scale-sdk"  # nobody polls it: the SDK side measures the start call alone
CLIENT_APP = {"X-API-Key": "dev-client-app-key"}
OPERATOR = {"X-API-Key": "dev-operator-key"}
_SCRUB_PREFIXES = ("TEMPORAL_", "SENDGRID_", "TWILIO_", "WEBHOOK_", "DATABASE_", "PAYLOAD_")
_SCRUB = {"API_KEYS", "APP_ENV", "DATA_DIR", "CASE_TYPE_DIRS_EXTRA", "CONSOLE_USERS"}
MILESTONE_EVENTS = ("sla_at_risk", "sla_warning", "sla_breached", "sla_escalated")
TARGET_RSS_MB = 1024.0
TARGET_LATENESS_P99 = 2.0
TARGET_POST_RATIO = 1.3


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def load1() -> float:
    return os.getloadavg()[0]


# ------------------------------------------------------------------------------- the stack
class Stack:
    """Postgres, Temporal (SQLite file), one worker and one API, under ``root``."""

    def __init__(
        self,
        root: Path,
        worker_env: dict[str, str],
        api_env: dict[str, str],
        payload_keys: str,
        sqlite_pragmas: list[str],
    ) -> None:
        from workflows.search_attributes import ALL

        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)  # Postgres runs as its own user when we are root
        self.postgres = Postgres(root, self.logs)
        self.temporal = Temporal(root, self.logs, [key.name for key in ALL])
        for pragma in sqlite_pragmas:  # the dev server's SQLite file (default: its own)
            self.temporal.child.cmd += ["--sqlite-pragma", pragma]
        self.api_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.payload_keys = payload_keys
        self.worker_env = worker_env
        self.api_only = False  # no worker: the API against Temporal and Postgres alone
        self.api_env = api_env
        onboarding = [sys.executable, "-m", "cli.main", "--log-level", "WARNING"]
        self.worker = Child("worker", [*onboarding, "worker"], logs=self.logs)
        self.api = Child(
            "api",
            [*onboarding, "api", "--host", "127.0.0.1", "--port", str(self.api_port)],
            logs=self.logs,
        )

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _SCRUB and not k.startswith((*_SCRUB_PREFIXES, "WORKER_", "DB_"))
        }
        env.update(
            APP_ENV="development",
            DATABASE_URL=self.postgres.url,
            TEMPORAL_ADDRESS=self.temporal.address,
            TEMPORAL_TASK_QUEUE=TASK_QUEUE,
            DATA_DIR=str(self.root / "data"),
            CASE_TYPE_DIRS_EXTRA=str(REPO / "playbooks" / "demo"),
            PAYLOAD_KEYS=self.payload_keys,
            PYTHONUNBUFFERED="1",
        )
        return env

    def start(self) -> None:
        (self.root / "data").mkdir(exist_ok=True)
        self.postgres.init()
        self.postgres.start()
        self.postgres.create_database()
        env = self.env()
        migrate = subprocess.run(
            [sys.executable, "-m", "cli.main", "migrate"],
            env=env,
            cwd=REPO,
            capture_output=True,
            check=False,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrations failed:\n{migrate.stdout[-3000:]!r}")
        self.temporal.start()
        self.worker.env = {**env, **self.worker_env}
        self.api.env = {**env, **self.api_env}
        if not self.api_only:
            self.worker.start()
        self.api.start()

    async def wait_ready(self, within: float = 120) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=5) as http:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self.base_url}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.5)
        raise RuntimeError(
            f"API not ready after {within:.0f}s\n--- api\n{self.api.tail()}\n"
            f"--- worker\n{self.worker.tail()}"
        )

    def stop(self) -> None:
        for child in (self.api, self.worker, self.temporal.child):
            child.close()
        self.postgres.child.stop(sig=signal.SIGINT, timeout=60)  # fast shutdown
        self.postgres.child.close()


# ------------------------------------------------------------------------------- sampling
def tree_rss_mb(pid: int | None, *, children: bool = False) -> float:
    if pid is None:
        return float("nan")
    try:
        proc = psutil.Process(pid)
        procs = [proc, *(proc.children(recursive=True) if children else [])]
        return sum(p.memory_info().rss for p in procs) / 2**20
    except psutil.Error:
        return float("nan")


def tree_cpu_seconds(pid: int | None, *, children: bool = False) -> float:
    if pid is None:
        return 0.0
    try:
        proc = psutil.Process(pid)
        procs = [proc, *(proc.children(recursive=True) if children else [])]
        total = 0.0
        for p in procs:
            t = p.cpu_times()
            total += t.user + t.system
        return total
    except psutil.Error:
        return 0.0


@dataclass
class Samples:
    """Worker RSS every second (time since the bench started, MB), and the readers' timings."""

    rss: list[tuple[float, float]] = field(default_factory=list)
    list_ms: list[float] = field(default_factory=list)
    dashboard_ms: list[float] = field(default_factory=list)
    read_errors: int = 0


async def sample_rss(stack: Stack, samples: Samples, t0: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.rss.append((time.monotonic() - t0, tree_rss_mb(stack.worker.pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


async def read_while_loaded(base_url: str, samples: Samples, stop: asyncio.Event) -> None:
    """An operator's screen: the case list (first page) and the dashboard, one after the other,
    once a second."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60, headers=OPERATOR) as http:
        while not stop.is_set():
            for path, params, into in (
                ("/cases", {"limit": 50}, samples.list_ms),
                ("/dashboard", {}, samples.dashboard_ms),
            ):
                t = time.perf_counter()
                try:
                    r = await http.get(path, params=params)
                    if r.status_code == 200:
                        into.append((time.perf_counter() - t) * 1000)
                    else:
                        samples.read_errors += 1
                except httpx.HTTPError:
                    samples.read_errors += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)


# ------------------------------------------------------------------------------- creating
def case_body(index: int, run_id: str) -> dict[str, Any]:
    return {
        "case_type": CASE_TYPE,
        "client": {
            "name": f"Scale Client {index:05d}",
            "email": f"client{index:05d}.{run_id}@example.com",
            "phone": f"+447700{index:06d}",
            "client_type": "individual",
            "tier": "standard",
            "country": "GB",
            "contact_preferences": {"channels": ["email", "sms", "in_app"]},
        },
    }


@dataclass
class Created:
    api_ms: list[float] = field(default_factory=list)
    sdk_ms: list[float] = field(default_factory=list)
    api_seconds: float = 0.0  # wall time spent in API blocks
    sdk_seconds: float = 0.0
    api_errors: dict[str, int] = field(default_factory=dict)
    sdk_errors: dict[str, int] = field(default_factory=dict)
    refs: list[str] = field(default_factory=list)


async def pool(items: list[Any], concurrency: int, one: Callable[[Any], Awaitable[None]]) -> float:
    """Run ``one`` over ``items`` with ``concurrency`` at a time; the wall time."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def runner() -> None:
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await one(item)

    start = time.perf_counter()
    await asyncio.gather(*(runner() for _ in range(concurrency)))
    return time.perf_counter() - start


class Creator:
    """POST /cases over HTTP, and the SDK's start_workflow of the same input."""

    def __init__(self, base_url: str, settings: Any, concurrency: int, run_id: str) -> None:
        from api.deps import load_case_types

        self.base_url = base_url
        self.settings = settings
        self.concurrency = concurrency
        self.run_id = run_id
        self.registry = load_case_types(settings)
        case_type = self.registry.get(CASE_TYPE, startable_only=True)
        if case_type.calendar or any(s.calendar for s in case_type.stages):
            raise SystemExit(f"{CASE_TYPE} counts SLAs in a business calendar: lateness is 24/7")
        self.case_type = case_type
        self.created = Created()
        self.client: Any = None
        self.http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Creator:
        from core.temporal import connect

        self.client = await connect(self.settings)
        limits = httpx.Limits(max_connections=self.concurrency + 4)
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=120, limits=limits)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.http is not None:
            await self.http.aclose()

    async def api_block(self, indexes: list[int], *, record: bool = True) -> None:
        assert self.http is not None
        http = self.http

        async def one(i: int) -> None:
            t = time.perf_counter()
            try:
                r = await http.post(
                    "/cases",
                    json=case_body(i, self.run_id),
                    headers={**CLIENT_APP, "Idempotency-Key": f"scale-{self.run_id}-{i:06d}"},
                )
            except httpx.HTTPError as e:
                key = type(e).__name__
                self.created.api_errors[key] = self.created.api_errors.get(key, 0) + 1
                return
            ms = (time.perf_counter() - t) * 1000
            if r.status_code == 201:
                self.created.refs.append(r.json()["reference"])
                if record:
                    self.created.api_ms.append(ms)
            else:
                key = str(r.status_code)
                self.created.api_errors[key] = self.created.api_errors.get(key, 0) + 1

        took = await pool(indexes, self.concurrency, one)
        if record:
            self.created.api_seconds += took

    def sdk_start(self, index: int) -> tuple[Any, dict[str, Any]]:
        """What the API starts for a case (``api.services.cases``), built the same way: the
        case type and data as the API resolves them, pinned subprocess types and calendars,
        the same search attributes."""
        from temporalio.common import SearchAttributePair, TypedSearchAttributes

        from api.services.cases import new_case_ref, resolve_case_type
        from playbooks.registry import pinned_calendars, pinned_subprocess_types
        from schemas.case import StartCaseRequest
        from schemas.contracts import EngineCaseInput
        from workflows import search_attributes as sa

        body = StartCaseRequest.model_validate(case_body(index, f"sdk-{self.run_id}"))
        case_type, data = resolve_case_type(self.registry, body)
        ref = new_case_ref()
        workflow_id = f"{case_type.workflow_prefix or case_type.name}-{ref}"
        children = pinned_subprocess_types(
            self.registry, case_type, client=body.client.model_dump(mode="json"), data=data
        )
        inp = EngineCaseInput(
            case_ref=ref,
            workflow_id=workflow_id,
            case_type=case_type,
            client=body.client,
            data=data,
            requested_by="client_app:bench",
            subprocess_types=children,
            calendars=pinned_calendars(
                self.registry, [case_type, *children.values()], datetime.now(UTC)
            ),
            row_exists=True,
        )
        attributes = TypedSearchAttributes(
            [
                SearchAttributePair(sa.CASE_REF, ref),
                SearchAttributePair(sa.CASE_STAGE, case_type.stages[0].key),
                SearchAttributePair(sa.CASE_STATUS, "open"),
                SearchAttributePair(sa.CLIENT_TYPE, body.client.client_type.value),
                SearchAttributePair(sa.CLIENT_TIER, body.client.tier.value),
                SearchAttributePair(sa.SLA_STATE, "on_track"),
                SearchAttributePair(sa.CASE_TYPE, case_type.name),
            ]
        )
        return inp, {"id": workflow_id, "search_attributes": attributes}

    async def sdk_block(self, indexes: list[int], *, record: bool = True) -> None:
        from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

        from schemas.contracts import CASE_WORKFLOW

        prepared = [self.sdk_start(i) for i in indexes]  # built before the clock starts

        async def one(item: tuple[Any, dict[str, Any]]) -> None:
            inp, kwargs = item
            t = time.perf_counter()
            try:
                await self.client.start_workflow(
                    CASE_WORKFLOW,
                    inp,
                    task_queue=SDK_QUEUE,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    **kwargs,
                )
            except Exception as e:
                key = type(e).__name__
                self.created.sdk_errors[key] = self.created.sdk_errors.get(key, 0) + 1
                return
            if record:
                self.created.sdk_ms.append((time.perf_counter() - t) * 1000)

        took = await pool(prepared, self.concurrency, one)
        if record:
            self.created.sdk_seconds += took


# ------------------------------------------------------------------------------- lateness
@dataclass
class Lateness:
    by_kind: dict[str, list[float]]
    missing: dict[str, int]
    expected_per_kind: int


def milestone_offsets(case_type: Any) -> dict[str, float]:
    """Seconds after stage entry at which each milestone of ``STAGE`` falls due."""
    stage = case_type.stage(STAGE)
    budget = stage.sla.total_seconds()
    offsets = {f"warning:{f}": budget * f for f in stage.warn_at}
    if stage.predictive is not None:
        offsets["at_risk"] = budget * stage.predictive.at
    offsets["breach"] = budget
    for e in stage.escalations:
        offsets[f"escalation:{e.level}"] = budget + e.after_breach.total_seconds()
    return offsets


async def fetch_lateness(database_url: str, case_type: Any, refs: list[str]) -> Lateness:
    """Fired minus due for every milestone event of every case in ``refs``."""
    from sqlalchemy import text

    from store.db import make_engine

    offsets = milestone_offsets(case_type)
    stage = case_type.stage(STAGE)
    budget = stage.sla.total_seconds()
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT e.case_ref, e.kind, e.detail, e.occurred_at, si.entered_at "
                        "FROM case_events e JOIN stage_intervals si "
                        "ON si.case_ref = e.case_ref AND si.stage = :stage "
                        "WHERE e.kind = ANY(:kinds) AND e.case_ref = ANY(:refs)"
                    ),
                    {"stage": STAGE, "kinds": list(MILESTONE_EVENTS), "refs": refs},
                )
            ).all()
    finally:
        await engine.dispose()
    by_kind: dict[str, list[float]] = {k: [] for k in offsets}
    for _ref, kind, detail, occurred_at, entered_at in rows:
        if kind == "sla_warning":
            key = f"warning:{detail.get('threshold')}"
        elif kind == "sla_at_risk":
            key = "at_risk"
        elif kind == "sla_breached":
            key = "breach"
        else:
            key = f"escalation:{detail.get('level')}"
        due = offsets.get(key, budget)
        by_kind.setdefault(key, []).append((occurred_at - entered_at).total_seconds() - due)
    missing = {k: len(refs) - len(v) for k, v in by_kind.items()}
    return Lateness(by_kind=by_kind, missing=missing, expected_per_kind=len(refs))


async def backlog(client: Any) -> str:
    """The worker's task queue as the server sees it: tasks waiting, and the oldest one's age."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    parts = []
    for name, kind in (
        ("workflow", TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        ("activity", TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
    ):
        try:
            got = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=TASK_QUEUE),
                    task_queue_type=kind,
                    report_stats=True,
                )
            )
        except Exception as e:  # a busy server may time out: say so, do not stop the run
            parts.append(f"{name} ?({type(e).__name__})")
            continue
        stats = got.stats
        age = stats.approximate_backlog_age.ToTimedelta().total_seconds()
        parts.append(f"{name} {stats.approximate_backlog_count} ({age:.0f}s)")
    return "backlog " + ", ".join(parts)


@dataclass
class Breakdown:
    """Where a sample of cases spent their waits, from their Temporal histories (seconds)."""

    cases: int = 0
    first_task_wait: list[float] = field(default_factory=list)  # start -> first task started
    timer_late: list[float] = field(default_factory=list)  # timer fired - when it was due
    timer_pickup: list[float] = field(default_factory=list)  # timer fired -> task started
    activity_wait: list[float] = field(default_factory=list)  # scheduled -> started
    task_attempts_over_1: int = 0  # workflow tasks that timed out or failed and ran again


async def history_breakdown(client: Any, workflow_ids: list[str]) -> Breakdown:
    from temporalio.api.enums.v1 import EventType as E

    out = Breakdown()
    for workflow_id in workflow_ids:
        try:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
        except Exception:  # noqa: S112 - a sample: skip what the server will not give
            continue
        out.cases += 1
        events = list(history.events)
        timers: dict[int, Any] = {}
        scheduled: dict[int, Any] = {}
        pending_fire: Any = None
        first_scheduled: Any = None
        first_seen = False
        for e in events:
            t = e.event_time.ToDatetime()
            if e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                if first_scheduled is None:
                    first_scheduled = t
                if e.workflow_task_scheduled_event_attributes.attempt > 1:
                    out.task_attempts_over_1 += 1
            elif e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                if first_scheduled is not None and not first_seen:
                    out.first_task_wait.append((t - first_scheduled).total_seconds())
                    first_seen = True
                if pending_fire is not None:
                    out.timer_pickup.append((t - pending_fire).total_seconds())
                    pending_fire = None
            elif e.event_type == E.EVENT_TYPE_TIMER_STARTED:
                a = e.timer_started_event_attributes
                timers[e.event_id] = t + a.start_to_fire_timeout.ToTimedelta()
            elif e.event_type == E.EVENT_TYPE_TIMER_FIRED:
                due = timers.get(e.timer_fired_event_attributes.started_event_id)
                if due is not None:
                    out.timer_late.append((t - due).total_seconds())
                pending_fire = t
            elif e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled[e.event_id] = t
            elif e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                s = scheduled.get(e.activity_task_started_event_attributes.scheduled_event_id)
                if s is not None:
                    out.activity_wait.append((t - s).total_seconds())
    return out


async def count_events(database_url: str, kind: str, level: int) -> int:
    from sqlalchemy import text

    from store.db import make_engine

    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            got = await conn.scalar(
                text(
                    "SELECT count(*) FROM case_events WHERE kind = :kind "
                    "AND (detail->>'level')::int = :level"
                ),
                {"kind": kind, "level": level},
            )
            return int(got or 0)
    finally:
        await engine.dispose()


# ------------------------------------------------------------------------------- the run
@dataclass
class Result:
    cases: int
    concurrency: int
    blocks: int
    worker_env: dict[str, str]
    api_env: dict[str, str]
    sqlite_pragmas: list[str]
    created: Created
    create_rate: float  # cases per second over the API blocks
    rss_start: float
    rss_created: float
    rss_steady: float
    rss_max: float
    samples: Samples
    lateness: Lateness
    cpu: dict[str, float]
    wall: float
    load_before: float
    load_after: float
    settled_in: float  # seconds after the last case's last milestone fell due
    breakdown: Breakdown


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}"


async def run(args: argparse.Namespace) -> Result | None:
    from core.codec import new_key_entry
    from core.settings import Settings

    load_before = load1()
    worker_env = dict(kv.split("=", 1) for kv in args.worker_env)
    api_env = dict(kv.split("=", 1) for kv in args.api_env)
    root = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    payload_keys = new_key_entry("scale-1")
    stack = Stack(root, worker_env, api_env, payload_keys, args.sqlite_pragma)
    stack.api_only = args.api_only
    print(
        f"stack under {root}; worker env {worker_env or '(defaults)'}; "
        f"API env {api_env or '(defaults)'}; "
        f"SQLite pragmas {args.sqlite_pragma or '(defaults)'}",
        flush=True,
    )
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # stop the stack on kill, even in background
        loop.add_signal_handler(sig, main_task.cancel)
    t0 = time.monotonic()
    stop = asyncio.Event()
    samples = Samples()
    tasks: list[asyncio.Task[None]] = []
    try:
        await asyncio.to_thread(stack.start)
        await stack.wait_ready()
        settings = Settings(
            temporal_address=stack.temporal.address,
            temporal_task_queue=TASK_QUEUE,
            payload_keys=payload_keys,
            case_type_dirs_extra=[REPO / "playbooks" / "demo"],
            database_url=stack.postgres.url,
        )
        run_id = f"{int(time.time()):x}"
        async with Creator(stack.base_url, settings, args.concurrency, run_id) as creator:
            # warm-up (not timed): imports, connections, the first workflow tasks
            await creator.api_block(list(range(args.concurrency)), record=False)
            await creator.sdk_block(list(range(args.concurrency)), record=False)
            rss_start = tree_rss_mb(stack.worker.pid)
            tasks.append(asyncio.create_task(sample_rss(stack, samples, t0, stop)))
            tasks.append(asyncio.create_task(read_while_loaded(stack.base_url, samples, stop)))
            cpu0 = cpu_snapshot(stack)
            n = args.cases - args.concurrency
            blocks = max(1, args.blocks)
            per = -(-n // blocks)
            start = args.concurrency
            sdk_per = max(args.concurrency, round(per * args.sdk_share))
            sdk_next = args.concurrency
            while start < args.cases:
                end = min(args.cases, start + per)
                await creator.api_block(list(range(start, end)))
                await creator.sdk_block(list(range(sdk_next, sdk_next + sdk_per)))
                sdk_next += sdk_per
                start = end
                c = creator.created
                print(
                    f"  [{time.monotonic() - t0:6.0f}s] {len(c.refs)} cases; POST p50/p99 "
                    f"{pct(c.api_ms, 50):.0f}/{pct(c.api_ms, 99):.0f} ms, SDK start "
                    f"{pct(c.sdk_ms, 50):.0f}/{pct(c.sdk_ms, 99):.0f} ms; worker "
                    f"{tree_rss_mb(stack.worker.pid):.0f} MB; load {load1():.1f}; "
                    f"{await backlog(creator.client)}",
                    flush=True,
                )
            created_at = time.monotonic()
            rss_created = tree_rss_mb(stack.worker.pid)
            created = creator.created
            case_type = creator.case_type
            client = creator.client
        if args.api_only:
            cpu1 = cpu_snapshot(stack)
            c = created
            n_starts = len(c.api_ms) + len(c.sdk_ms)
            print(
                f"API only: {len(c.api_ms)} POST p50/p99 {pct(c.api_ms, 50):.0f}/"
                f"{pct(c.api_ms, 99):.0f} ms ({len(c.api_ms) / c.api_seconds:.1f}/s); "
                f"{len(c.sdk_ms)} SDK p50/p99 {pct(c.sdk_ms, 50):.0f}/{pct(c.sdk_ms, 99):.0f} ms; "
                f"p99 ratio {pct(c.api_ms, 99) / pct(c.sdk_ms, 99):.2f}x; API CPU "
                f"{(cpu1['api'] - cpu0['api']) * 1000 / len(c.api_ms):.1f} ms per POST; "
                f"Temporal CPU {(cpu1['temporal'] - cpu0['temporal']) * 1000 / n_starts:.1f} "
                f"ms per start; Postgres CPU "
                f"{(cpu1['postgres'] - cpu0['postgres']) * 1000 / n_starts:.1f} ms per start; "
                f"errors {c.api_errors} {c.sdk_errors}; load {load_before:.1f} -> {load1():.1f}",
                flush=True,
            )
            return None
        # steady state: every case's last milestone fell due and was written
        offsets = milestone_offsets(case_type)
        last_due = created_at + max(offsets.values())
        top = max(e.level for e in case_type.stage(STAGE).escalations)
        want = len(created.refs)
        deadline = last_due + args.settle_max
        got = 0
        settled_at = None
        while time.monotonic() < deadline:
            got = await count_events(stack.postgres.url, "sla_escalated", top)
            if time.monotonic() >= last_due and got >= want and settled_at is None:
                settled_at = time.monotonic()
                break
            print(
                f"  [{time.monotonic() - t0:6.0f}s] level-{top} escalations written "
                f"{got}/{want}; worker {tree_rss_mb(stack.worker.pid):.0f} MB; "
                f"load {load1():.1f}; {await backlog(client)}",
                flush=True,
            )
            await asyncio.sleep(10)
        await asyncio.sleep(args.quiet)  # let the last outbox batches land
        cpu1 = cpu_snapshot(stack)
        rss_steady = tree_rss_mb(stack.worker.pid)
        stop.set()
        for task in tasks:
            await task
        lateness = await fetch_lateness(stack.postgres.url, case_type, created.refs)
        sample = random.Random(7).sample(created.refs, min(args.history_sample, len(created.refs)))
        prefix = case_type.workflow_prefix or case_type.name
        try:  # diagnostics: never lose the run's figures to them
            breakdown = await history_breakdown(client, [f"{prefix}-{ref}" for ref in sample])
        except Exception as e:
            print(f"history breakdown failed: {e!r}", flush=True)
            breakdown = Breakdown()
        rss_max = max((mb for _, mb in samples.rss), default=float("nan"))
        api_rate = len(created.api_ms) / created.api_seconds if created.api_seconds else 0.0
        return Result(
            cases=len(created.refs),
            concurrency=args.concurrency,
            blocks=args.blocks,
            worker_env=worker_env,
            api_env=api_env,
            sqlite_pragmas=args.sqlite_pragma,
            created=created,
            create_rate=api_rate,
            rss_start=rss_start,
            rss_created=rss_created,
            rss_steady=rss_steady,
            rss_max=rss_max,
            samples=samples,
            lateness=lateness,
            cpu={k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1},
            wall=time.monotonic() - t0,
            load_before=load_before,
            load_after=load1(),
            settled_in=(settled_at - last_due) if settled_at else float("nan"),
            breakdown=breakdown,
        )
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.to_thread(stack.stop)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def cpu_snapshot(stack: Stack) -> dict[str, float]:
    return {
        "worker": tree_cpu_seconds(stack.worker.pid),
        "api": tree_cpu_seconds(stack.api.pid),
        "temporal": tree_cpu_seconds(stack.temporal.child.pid),
        "postgres": tree_cpu_seconds(stack.postgres.child.pid, children=True),
        "bench": tree_cpu_seconds(os.getpid()),
    }


# ------------------------------------------------------------------------------- report
def lateness_rows(lat: Lateness) -> list[tuple[str, int, int, float, float, float]]:
    """(milestone, fired, missing, p50, p99, max) per kind, then all of them together."""
    order = sorted(lat.by_kind, key=lambda k: (not k.startswith("at_risk"), k))
    rows = []
    every: list[float] = []
    for key in order:
        values = lat.by_kind[key]
        every += values
        rows.append(
            (key, len(values), lat.missing[key], pct(values, 50), pct(values, 99), max(values))
            if values
            else (key, 0, lat.missing[key], *(float("nan"),) * 3)
        )
    escalations = [v for k, vs in lat.by_kind.items() if k.startswith("escalation") for v in vs]
    warnings = [v for k, vs in lat.by_kind.items() if not k.startswith("escalation") for v in vs]
    for name, values in (("all warnings", warnings), ("all escalations", escalations)):
        if values:
            rows.append((name, len(values), 0, pct(values, 50), pct(values, 99), max(values)))
    return rows


def report(r: Result, command: str) -> str:
    c = r.created
    api_p50, api_p99 = pct(c.api_ms, 50), pct(c.api_ms, 99)
    sdk_p50, sdk_p99 = pct(c.sdk_ms, 50), pct(c.sdk_ms, 99)
    ratio = api_p99 / sdk_p99 if sdk_p99 else float("nan")
    escalations = [
        v for k, vs in r.lateness.by_kind.items() if k.startswith("escalation") for v in vs
    ]
    esc_p99 = pct(escalations, 99)
    esc_missing = sum(m for k, m in r.lateness.missing.items() if k.startswith("escalation"))
    esc_met = esc_p99 <= TARGET_LATENESS_P99 and not esc_missing

    def met(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    env = ", ".join(f"`{k}={v}`" for k, v in sorted(r.worker_env.items())) or "defaults"
    api_env = ", ".join(f"`{k}={v}`" for k, v in sorted(r.api_env.items())) or "defaults"
    pragmas = ", ".join(f"`{p}`" for p in r.sqlite_pragmas) or "the dev server's defaults"
    lines = [
        TITLE,
        "",
        f"Date: {date.today().isoformat()}. Machine: {machine()}. One run; load average "
        f"(1 min) {r.load_before:.2f} before, {r.load_after:.2f} after (a shared machine).",
        "",
        f"Command: `{command}`. Worker settings: {env}; API settings: {api_env}; "
        f"Temporal dev server SQLite pragmas: {pragmas}.",
        "",
        f"- {r.cases:,} open cases of `{CASE_TYPE}` created over HTTP, {r.concurrency} at a "
        f"time, in {r.blocks} blocks, each followed by a block of SDK starts "
        f"({len(c.sdk_ms):,} timed); the run took {r.wall:.0f} s. Errors: API "
        f"{c.api_errors or 'none'}, SDK {c.sdk_errors or 'none'}; reads {r.samples.read_errors}.",
        "",
        "| figure | measured | target | |",
        "|---|---:|---:|---|",
        f"| create throughput (`POST /cases`) | {r.create_rate:.1f} cases/s | | |",
        f"| `POST /cases` p50 / p99 | {api_p50:.0f} / {api_p99:.0f} ms | | |",
        f"| SDK `start_workflow` p50 / p99 (same input, same concurrency) | {sdk_p50:.0f} / "
        f"{sdk_p99:.0f} ms | | |",
        f"| `POST /cases` p99 / SDK p99 | {ratio:.2f}x | <= {TARGET_POST_RATIO}x | "
        f"{met(ratio <= TARGET_POST_RATIO)} |",
        f"| worker RSS: idle / after creation / steady / max | {r.rss_start:.0f} / "
        f"{r.rss_created:.0f} / {r.rss_steady:.0f} / {r.rss_max:.0f} MB | <= "
        f"{TARGET_RSS_MB:.0f} MB | {met(r.rss_max <= TARGET_RSS_MB)} |",
        f"| escalation lateness p99 | {esc_p99:.2f} s ({esc_missing} never fired) | <= "
        f"{TARGET_LATENESS_P99:.0f} s | {met(esc_met)} |",
        f"| `GET /cases` p50 / p95 (first page of 50) | {pct(r.samples.list_ms, 50):.0f} / "
        f"{pct(r.samples.list_ms, 95):.0f} ms | | |",
        f"| `GET /dashboard` p50 / p95 | {pct(r.samples.dashboard_ms, 50):.0f} / "
        f"{pct(r.samples.dashboard_ms, 95):.0f} ms | | |",
        "",
        "Lateness of each SLA milestone (fired - due, seconds; due = stage entry + budget x "
        "fraction, 24/7):",
        "",
        "| milestone | fired | never fired | p50 | p99 | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, fired, missing, p50, p99, worst in lateness_rows(r.lateness):
        lines.append(f"| {name} | {fired:,} | {missing} | {p50:.2f} | {p99:.2f} | {worst:.2f} |")
    b = r.breakdown

    def spread(values: list[float]) -> str:
        return f"p50 {pct(values, 50):.2f} / p99 {pct(values, 99):.2f} / max " + (
            f"{max(values):.2f}" if values else "nan"
        )

    lines += [
        "",
        f"Where the waits are, from the Temporal histories of {b.cases} cases picked at random "
        "(seconds):",
        "",
        f"- timer fired minus timer due (the server's timer queue): {spread(b.timer_late)}",
        f"- timer fired to the workflow task picked up (the worker's sticky queue): "
        f"{spread(b.timer_pickup)}",
        f"- a new case's first workflow task, scheduled to picked up: {spread(b.first_task_wait)}",
        f"- activity scheduled to started: {spread(b.activity_wait)}",
        f"- workflow tasks run more than once (timed out or failed): {b.task_attempts_over_1}",
    ]
    total = sum(r.cpu.values())
    lines += [
        "",
        "CPU seconds over creation and steady state (of "
        f"{2 * (r.wall):.0f} core-seconds at most on 2 cores): "
        + ", ".join(f"{k} {v:.0f}" for k, v in sorted(r.cpu.items(), key=lambda kv: -kv[1]))
        + f"; total {total:.0f}.",
    ]
    return "\n".join(lines) + "\n"


def write_doc(text: str) -> None:
    body = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n\n"
    pattern = re.compile(re.escape(TITLE) + r"\n.*?(?=\n## |\Z)", re.DOTALL)
    if pattern.search(body):
        body = pattern.sub(lambda _m: text.rstrip() + "\n", body)
    else:
        body = body.rstrip() + "\n\n" + text
    DOC.write_text(body.rstrip() + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=5, help="API blocks, each then SDK starts")
    parser.add_argument(
        "--sdk-share", type=float, default=0.1, help="SDK starts per API case in each block"
    )
    parser.add_argument(
        "--settle-max", type=float, default=900, help="seconds to wait for the last milestones"
    )
    parser.add_argument("--quiet", type=float, default=15, help="seconds after they land")
    parser.add_argument(
        "--worker-env", action="append", default=[], help="KEY=VALUE for the worker process"
    )
    parser.add_argument(
        "--api-env", action="append", default=[], help="KEY=VALUE for the API process"
    )
    parser.add_argument(
        "--sqlite-pragma",
        action="append",
        default=[],
        help="PRAGMA=VALUE for the Temporal dev server's SQLite file (repeatable)",
    )
    parser.add_argument(
        "--history-sample", type=int, default=200, help="cases whose histories are read"
    )
    parser.add_argument(
        "--api-only",
        action="store_true",
        help="no worker: only POST /cases against the SDK start (a quick check of the API)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's temp dir")
    parser.add_argument("--write-docs", action="store_true", help="update docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.cases <= args.concurrency:
        parser.error("--cases must exceed --concurrency (the first batch is the warm-up)")
    result = asyncio.run(run(args))
    if result is None:  # --api-only
        return 0
    command = ".venv/bin/python bench/scale_bench.py " + " ".join(argv or sys.argv[1:])
    text = report(result, command.strip())
    print(text)
    if args.write_docs:
        write_doc(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
