"""The chaos harness: the real stack as processes, cases driven over HTTP while faults happen.

A scenario (``r1_worker_kill`` …) is a coroutine that injects its faults into a running
``Stack`` while the ``Driver`` opens N cases concurrently (``POST /cases`` with an
Idempotency-Key, retried the way a client should: on 503 after Retry-After, on a lost answer
with the same key) and moves each one to resolved over HTTP: documents waived by a case
manager, compliance straight through (clear screening, low risk), account provisioned, final
sign-off. Then the harness waits for convergence (cases resolved, outbox and webhooks settled,
read model equal to the workflows) up to a deadline, and ``audit`` counts what went wrong.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .procs import REPO, Child, Postgres, Temporal, free_port

CLIENT_APP = {"X-API-Key": "dev-client-app-key"}
CASE_MANAGER = {"X-API-Key": "dev-case-manager-key"}
OPERATOR = {"X-API-Key": "dev-operator-key"}
CASE_TYPE = "demo_onboarding"  # minute SLAs: warnings, breaches and escalations fire mid-run
TASK_QUEUE = "chaos"
SENDGRID_KEY = "SG.chaos-key"
TWILIO_FROM = "+15005550006"
DONE_STATUSES = ("resolved", "closed")
# the env a child must not inherit from whoever runs the harness
_SCRUB_PREFIXES = ("TEMPORAL_", "SENDGRID_", "TWILIO_", "WEBHOOK_", "DATABASE_", "PAYLOAD_")
_SCRUB = {"API_KEYS", "APP_ENV", "DATA_DIR", "CASE_TYPE_DIRS_EXTRA", "CONSOLE_USERS"}


def now() -> float:
    return time.monotonic()


class Timeline:
    """What happened when, in seconds since the scenario started (for the report)."""

    def __init__(self) -> None:
        self.t0 = now()
        self.events: list[tuple[float, str]] = []

    def __call__(self, text: str) -> None:
        t = now() - self.t0
        self.events.append((t, text))
        print(f"  [{t:6.1f}s] {text}", flush=True)


# ---------------------------------------------------------------------------------- stack
class Stack:
    """Postgres, Temporal, worker and API as processes, plus the provider stand-ins.

    A small supervisor restarts the worker or the API when one exits without the scenario
    having stopped it (as systemd or Kubernetes would), and records that as a crash.
    """

    def __init__(self, root: Path, timeline: Timeline) -> None:
        from tests.standins.sendgrid_standin import SendGridStandin
        from tests.standins.twilio_standin import TwilioStandin
        from tests.standins.webhook_standin import WebhookReceiverStandin
        from workflows.search_attributes import ALL

        self.root = root
        self.log = timeline
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)  # Postgres runs as its own user when we are root
        self.webhook_secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        self.sendgrid = SendGridStandin(api_key=SENDGRID_KEY)
        self.twilio = TwilioStandin()
        self.hooks = WebhookReceiverStandin(self.webhook_secret)
        self.postgres = Postgres(root, self.logs)
        self.temporal = Temporal(root, self.logs, [key.name for key in ALL])
        self.api_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.payload_keys = _new_payload_key()
        onboarding = [sys.executable, "-m", "cli.main", "--log-level", "INFO"]
        self.worker = Child("worker", [*onboarding, "worker"], logs=self.logs)
        self.api = Child(
            "api",
            [*onboarding, "api", "--host", "127.0.0.1", "--port", str(self.api_port)],
            logs=self.logs,
        )
        self.crashes: list[str] = []  # unplanned exits the supervisor saw
        self._supervisor: asyncio.Task[None] | None = None

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _SCRUB and not k.startswith(_SCRUB_PREFIXES)
        }
        env.update(
            APP_ENV="development",
            DATABASE_URL=self.postgres.url,
            TEMPORAL_ADDRESS=self.temporal.address,
            TEMPORAL_TASK_QUEUE=TASK_QUEUE,
            DATA_DIR=str(self.root / "data"),
            CASE_TYPE_DIRS_EXTRA=str(REPO / "playbooks" / "demo"),
            PAYLOAD_KEYS=self.payload_keys,
            SENDGRID_API_KEY=SENDGRID_KEY,
            SENDGRID_HOST=self.sendgrid.base_url,
            TWILIO_ACCOUNT_SID=self.twilio.account_sid,
            TWILIO_AUTH_TOKEN=self.twilio.auth_token,
            TWILIO_FROM_NUMBER=TWILIO_FROM,
            TWILIO_BASE_URL=self.twilio.base_url,
            WEBHOOK_URL=self.hooks.url,
            WEBHOOK_SECRET=self.webhook_secret,
            PORTAL_BASE_URL=f"{self.base_url}/portal",
            CONSOLE_BASE_URL=f"{self.base_url}/console",
            PYTHONUNBUFFERED="1",
        )
        return env

    async def start(self) -> None:
        for standin in (self.sendgrid, self.twilio, self.hooks):
            standin.start()
        (self.root / "data").mkdir(exist_ok=True)
        await asyncio.to_thread(self.postgres.init)
        await asyncio.to_thread(self.postgres.start)
        await asyncio.to_thread(self.postgres.create_database)
        env = self.env()
        migrate = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "cli.main", "migrate"],
            env=env,
            cwd=REPO,
            capture_output=True,
            check=False,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrations failed:\n{migrate.stdout[-3000:]!r}")
        await asyncio.to_thread(self.temporal.start)
        self.worker.env = env
        self.api.env = env
        self.worker.start()
        self.api.start()
        await self.wait_ready(within=90)
        self._supervisor = asyncio.create_task(self._supervise())
        self.log(
            f"stack up: postgres :{self.postgres.port}, temporal :{self.temporal.port}, "
            f"api :{self.api_port}, worker pid {self.worker.pid}"
        )

    async def wait_ready(self, within: float) -> None:
        deadline = now() + within
        async with httpx.AsyncClient(timeout=5) as http:
            while now() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self.base_url}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.5)
        raise RuntimeError(
            f"API not ready after {within:.0f}s\n--- api\n{self.api.tail()}\n"
            f"--- worker\n{self.worker.tail()}"
        )

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for child in (self.worker, self.api):
                if child.proc is not None and not child.alive() and not child.planned:
                    code = child.returncode()
                    self.crashes.append(f"{child.name} exited by itself (code {code})")
                    self.log(f"CRASH: {child.name} exited by itself (code {code}); restarting")
                    await asyncio.sleep(1)
                    child.start()
            for part in (self.postgres.child, self.temporal.child):
                if part.proc is not None and not part.alive() and not part.planned:
                    self.crashes.append(f"{part.name} exited by itself ({part.returncode()})")
                    self.log(f"CRASH: {part.name} exited by itself")
                    part.planned = True  # reported once; the scenario decides what follows

    # faults the scenarios use ---------------------------------------------------------------
    async def kill_worker(self) -> int | None:
        pid = self.worker.pid
        await asyncio.to_thread(self.worker.kill9)
        return pid

    def start_worker(self) -> None:
        self.worker.start()

    async def stop_temporal(self, *, hard: bool) -> None:
        if hard:
            await asyncio.to_thread(self.temporal.child.kill9)
        else:
            await asyncio.to_thread(self.temporal.child.stop, signal.SIGTERM, 60)

    async def start_temporal(self) -> None:
        await asyncio.to_thread(self.temporal.start)

    async def stop_postgres(self, *, hard: bool) -> None:
        if hard:
            await asyncio.to_thread(self.postgres.kill9)
        else:
            await asyncio.to_thread(self.postgres.stop_fast)

    async def start_postgres(self) -> None:
        await asyncio.to_thread(self.postgres.start)

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        for child in (self.api, self.worker, self.temporal.child):
            await asyncio.to_thread(child.close)
        await asyncio.to_thread(self.postgres.child.stop, signal.SIGINT, 60)
        await asyncio.to_thread(self.postgres.child.close)
        for standin in (self.sendgrid, self.twilio, self.hooks):
            standin.stop()


def _new_payload_key() -> str:
    from core.codec import new_key_entry

    return new_key_entry("chaos-1")


# --------------------------------------------------------------------------------- driver
@dataclass
class CaseRun:
    """One case as its client and case manager see it over HTTP."""

    index: int
    key: str
    body: dict[str, Any]
    refs: set[str] = field(default_factory=set)  # every reference the API gave for the key
    created: int | None = None  # the status of the first success (201 or 200)
    gave_up: bool = False
    waived: bool = False
    decided: bool = False
    decided_at: float | None = None  # the final sign-off's 200
    done_at: float | None = None
    # a command refused because the case is elsewhere than the read model said: how long the
    # read model stayed behind the workflow (from that refusal until the read model moved on)
    behind_since: float | None = None
    behind_stage: str | None = None
    behind_max: float = 0.0

    @property
    def ref(self) -> str | None:
        return min(self.refs) if self.refs else None


@dataclass
class HttpLog:
    """Every API answer by status, and what must never happen (5xx other than 503)."""

    counts: Counter[str] = field(default_factory=Counter)
    unavailable_without_retry_after: int = 0
    server_errors: list[str] = field(default_factory=list)  # 5xx other than 503
    transport_errors: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)  # 4xx by route and reason

    def record(self, method: str, path: str, response: httpx.Response) -> None:
        code = response.status_code
        self.counts[str(code)] += 1
        if code == 503 and "retry-after" not in response.headers:
            self.unavailable_without_retry_after += 1
        if code >= 500 and code != 503:
            self.server_errors.append(f"{method} {path} -> {code}: {response.text[:300]}")
        if 400 <= code < 500:
            route = re.sub(r"/cases/[^/]+", "/cases/{ref}", path)
            detail = response.text[:90]
            with contextlib.suppress(ValueError, AttributeError):
                detail = str(response.json()["detail"])[:90]
            detail = re.sub(r"\bC-[A-Z0-9]{6,}\b", "{ref}", detail)
            self.refusals[f"{method} {route} {code}: {detail}"] += 1

    @property
    def other_5xx(self) -> int:
        return len(self.server_errors)


def client_body(index: int, run_id: str) -> dict[str, Any]:
    """A distinct individual per case, so each message is recognisable at the stand-ins. A
    third each: email then SMS, SMS then email, SMS only. Client messages go by email first
    unless urgent (SMS is the fallback), so the SMS-only third is what sends most SMS."""
    channels = (["email", "sms", "in_app"], ["sms", "email", "in_app"], ["sms", "in_app"])[
        index % 3
    ]
    return {
        "case_type": CASE_TYPE,
        "client": {
            "name": f"Chaos Client {index:04d}",
            "email": f"client{index:04d}.{run_id}@example.com",
            "phone": f"+4477009{index:05d}",
            "client_type": "individual",
            "tier": "standard",
            "country": "GB",
            "contact_preferences": {"channels": channels},
        },
    }


class Driver:
    """Opens the cases and walks each one to resolved over HTTP, retrying like a client."""

    def __init__(
        self,
        base_url: str,
        cases: int,
        *,
        run_id: str,
        timeline: Timeline,
        concurrency: int = 16,
        poll_seconds: float = 2.0,
    ) -> None:
        self.base_url = base_url
        self.log = timeline
        self.http_log = HttpLog()
        self.cases = [
            CaseRun(index=i, key=f"chaos-{run_id}-{i:04d}", body=client_body(i, run_id))
            for i in range(cases)
        ]
        self.views: dict[str, dict[str, Any]] = {}  # reference -> latest list item
        self._sem = asyncio.Semaphore(concurrency)
        self._poll = poll_seconds
        self._http: httpx.AsyncClient | None = None
        self._rng = random.Random(run_id)
        self.deadline = now() + 3600  # moved by the run once the faults are over

    def past_deadline(self) -> bool:
        return now() >= self.deadline

    # -- HTTP ---------------------------------------------------------------------------
    async def call(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        json_body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response | None:
        """One request; None when no answer came (connection refused, timed out)."""
        assert self._http is not None
        async with self._sem:
            try:
                response = await self._http.request(
                    method, path, headers=headers, json=json_body, params=params
                )
            except httpx.HTTPError as e:
                self.http_log.transport_errors[type(e).__name__] += 1
                return None
        self.http_log.record(method, path.split("?")[0], response)
        return response

    @staticmethod
    def retry_after(response: httpx.Response | None, default: float) -> float:
        if response is not None and response.status_code == 503:
            with contextlib.suppress(ValueError):
                return min(float(response.headers.get("retry-after", default)), 10.0)
        return default

    # -- the walk -----------------------------------------------------------------------
    def in_flight(self) -> int:
        return sum(1 for c in self.cases if c.created and c.done_at is None)

    def done(self) -> int:
        return sum(1 for c in self.cases if c.done_at is not None)

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=20) as http:
            self._http = http
            poller = asyncio.create_task(self._poll_views())
            progress = asyncio.create_task(self._progress())
            try:
                await asyncio.gather(*(self._walk(c) for c in self.cases))
            finally:
                for task in (poller, progress):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                self._http = None

    async def _progress(self) -> None:
        while True:
            await asyncio.sleep(15)
            opened = sum(1 for c in self.cases if c.created)
            self.log(f"progress: {opened} opened, {self.done()} resolved")

    async def _create(self, case: CaseRun) -> None:
        headers = {**CLIENT_APP, "Idempotency-Key": case.key}
        delay = 0.5
        while not self.past_deadline():
            r = await self.call("POST", "/cases", headers=headers, json_body=case.body)
            if r is not None and r.status_code in (200, 201):
                case.refs.add(r.json()["reference"])
                if case.created is None:
                    case.created = r.status_code
                    # a client that did not trust the answer sends the same request again
                    again = await self.call("POST", "/cases", headers=headers, json_body=case.body)
                    if again is not None and again.status_code in (200, 201):
                        case.refs.add(again.json()["reference"])
                return
            if r is not None and r.status_code not in (503,) and r.status_code < 500:
                self.log(f"case {case.index}: POST /cases refused {r.status_code}: {r.text[:200]}")
                case.gave_up = True
                return
            await asyncio.sleep(self.retry_after(r, delay) + self._rng.random())
            delay = min(delay * 2, 8)
        case.gave_up = True

    async def _walk(self, case: CaseRun) -> None:
        await asyncio.sleep(self._rng.random() * 2)  # not all at the same millisecond
        await self._create(case)
        ref = case.ref
        if ref is None:
            return
        while not self.past_deadline():
            await asyncio.sleep(self._poll * (0.75 + self._rng.random() / 2))
            view = self.views.get(ref)
            if view is None:
                continue
            stage, status = view["stage"], view["status"]
            if case.behind_since is not None and stage != case.behind_stage:
                case.behind_max = max(case.behind_max, now() - case.behind_since)
                case.behind_since = None
            if status in DONE_STATUSES:
                case.done_at = now()
                return
            if stage == "document_collection" and not case.waived:
                r = await self.call(
                    "POST",
                    f"/cases/{ref}/documents/waive",
                    headers=CASE_MANAGER,
                    json_body={"note": "chaos run: originals seen"},
                )
                case.waived = r is not None and r.status_code == 200
                self._note_behind(case, stage, r)
            elif stage == "final_review" and not case.decided:
                r = await self.call(
                    "POST",
                    f"/cases/{ref}/decision",
                    headers=CASE_MANAGER,
                    json_body={"decision": "approve"},
                )
                case.decided = r is not None and r.status_code == 200
                case.decided_at = now() if case.decided else None
                self._note_behind(case, stage, r)

    @staticmethod
    def _note_behind(case: CaseRun, seen: str, r: httpx.Response | None) -> None:
        if r is None or r.status_code != 409 or case.behind_since is not None:
            return
        found = re.search(r"is (?:at (\w+)|(resolved|closed|cancelled))", r.text)
        if found and (found[1] or found[2]) != seen:
            case.behind_since, case.behind_stage = now(), seen

    async def _poll_views(self) -> None:
        """The read model of every case, one page of 200 at a time (cheap for the API)."""
        while not self.past_deadline():
            offset = 0
            while True:
                r = await self.call(
                    "GET",
                    "/cases",
                    headers=OPERATOR,
                    params={"limit": 200, "offset": offset},
                )
                if r is None or r.status_code != 200:
                    break
                items = r.json()["items"]
                for item in items:
                    self.views[item["reference"]] = item
                if len(items) < 200:
                    break
                offset += 200
            await asyncio.sleep(self._poll)


# ------------------------------------------------------------------------------- scenario
FaultInjector = Callable[["Run"], Awaitable[None]]


@dataclass
class Scenario:
    key: str  # "R1"
    title: str
    what: str  # one paragraph for docs/RELIABILITY.md
    default_cases: int
    inject: FaultInjector


@dataclass
class Run:
    """What a scenario's fault injector gets: the stack, the driver, a seeded RNG, the log."""

    stack: Stack
    driver: Driver
    rng: random.Random
    log: Timeline
    faults: list[str] = field(default_factory=list)  # one line per injected fault

    def fault(self, text: str) -> None:
        line = f"{text} ({self.driver.in_flight()} cases in flight)"
        self.faults.append(line)
        self.log(line)

    async def until_cases_opened(self, share: float, within: float = 120) -> None:
        """Wait until ``share`` of the cases were opened (so faults hit work in progress)."""
        want = share * len(self.driver.cases)
        for _ in range(int(within * 2)):
            if sum(1 for c in self.driver.cases if c.created) >= want:
                return
            await asyncio.sleep(0.5)


def json_line(obj: Any) -> str:
    return json.dumps(obj, default=str, sort_keys=True)
