"""Scale-out on the real stack: the compose ``scale`` profile, without Docker.

One Temporal dev server and one Postgres, two ``onboarding worker`` and two ``onboarding api``
processes on one task queue (the processes and the walk are the chaos harness's,
``bench/chaos``). Cases are opened through both API replicas alternately, each
``POST /cases`` sent again with the same Idempotency-Key to the *other* replica (and for some
keys to both replicas at the same instant). Midway one worker gets SIGKILL and is not
restarted; the other carries every case to resolved. Then, as a user would check it: every
case resolved, one case per key whichever replica answered, none lost, and exactly one e-mail
per (case, milestone) at the SendGrid stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType

from bench.chaos.audit import Figures, audit, converge, dispose, temporal_client
from bench.chaos.harness import CLIENT_APP, OPERATOR, Driver, Stack, Timeline, now
from bench.chaos.procs import Child, free_port
from notifications import Milestone
from store.db import make_engine
from store.models import Case

pytestmark = pytest.mark.e2e

CASES = 20
RACED_EVERY = 5  # every 5th key is also sent to both replicas at the same instant
KILL_WHEN_IN_FLIGHT = CASES // 2
DRIVE_SECONDS = 90  # the walk gives up on a case after this (a failure, not a slow pass)
CLIENT_MILESTONES = {  # the six a completed onboarding sends the client
    Milestone.CASE_CREATED,
    Milestone.DOCUMENTS_RECEIVED,
    Milestone.COMPLIANCE_APPROVED,
    Milestone.ACCOUNT_PROVISIONING_STARTED,
    Milestone.SETUP_COMPLETED,
    Milestone.WELCOME_PACKAGE,
}


class TwoReplicas(Driver):
    """The chaos driver, with each request sent to one of two API replicas.

    Case ``i`` is opened through replica ``i % 2``; each further ``POST /cases`` with the same
    Idempotency-Key goes to the next replica, so the driver's "did not trust the answer"
    repeat lands on the other one. Every other request alternates between the two.
    """

    def __init__(self, base_urls: list[str], cases: int, **kwargs: Any) -> None:
        super().__init__(base_urls[0], cases, **kwargs)
        self.base_urls = base_urls
        self.index = {case.key: case.index for case in self.cases}
        self.sends: Counter[str] = Counter()  # Idempotency-Key -> POST /cases so far
        self.turn = 0
        self.served: Counter[int] = Counter()  # replica -> answers it gave
        # (key, replica, status, reference) of every POST /cases that was answered
        self.posts: list[tuple[str, int, int, str | None]] = []

    async def call(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        json_body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response | None:
        key = headers.get("Idempotency-Key")
        if key is not None:
            replica = (self.index[key] + self.sends[key]) % len(self.base_urls)
            self.sends[key] += 1
        else:
            replica = self.turn % len(self.base_urls)
            self.turn += 1
        url = self.base_urls[replica] + path  # absolute: the client's base_url is not used
        response = await super().call(
            method, url, headers=headers, json_body=json_body, params=params
        )
        if response is None:
            return None
        self.served[replica] += 1
        if key is not None:
            ref = None
            if response.status_code in (200, 201):
                ref = response.json()["reference"]
            self.posts.append((key, replica, response.status_code, ref))
        return response

    async def _create(self, case: Any) -> None:
        if case.index % RACED_EVERY == 0:
            # the same request to both replicas at once (a client retrying on a timeout)
            headers = {**CLIENT_APP, "Idempotency-Key": case.key}
            raced = await asyncio.gather(
                *(
                    self.call("POST", "/cases", headers=headers, json_body=case.body)
                    for _ in self.base_urls
                )
            )
            for r in raced:
                if r is not None and r.status_code in (200, 201):
                    case.refs.add(r.json()["reference"])
        await super()._create(case)


class ScaledStack(Stack):
    """The chaos stack plus a second worker and a second API with the same environment
    (the ``scale`` profile): one Postgres, one Temporal, one task queue."""

    def __init__(self, root: Path, timeline: Timeline) -> None:
        super().__init__(root, timeline)
        onboarding = [sys.executable, "-m", "cli.main", "--log-level", "INFO"]
        port = free_port()
        self.api_b_url = f"http://127.0.0.1:{port}"
        self.worker_b = Child("worker-b", [*onboarding, "worker"], logs=self.logs)
        self.api_b = Child(
            "api-b",
            [*onboarding, "api", "--host", "127.0.0.1", "--port", str(port)],
            logs=self.logs,
        )

    async def wait_ready(self, within: float) -> None:
        """Called by ``start`` once worker A and API A run: start B with their environment
        (so all four come up together), then wait for both APIs."""
        if self.worker_b.proc is None:
            for child in (self.worker_b, self.api_b):
                child.env = self.worker.env
                child.start()
        await super().wait_ready(within)
        deadline = now() + within
        async with httpx.AsyncClient(timeout=5) as http:
            while now() < deadline:
                for child in (self.worker_b, self.api_b):
                    if not child.alive():
                        pytest.fail(f"{child.name} exited during start-up\n{child.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self.api_b_url}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.3)
        pytest.fail(f"API B not ready after {within:.0f}s\n{self.api_b.tail()}")

    async def stop(self) -> None:
        for child in (self.api_b, self.worker_b):
            await asyncio.to_thread(child.close)
        await super().stop()


async def started_by(client: Any, workflow_id: str) -> set[str]:
    """The worker identities (``pid@host``) that ran a workflow task or activity of a case."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    found = set()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            found.add(event.workflow_task_started_event_attributes.identity)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            found.add(event.activity_task_started_event_attributes.identity)
    return found


def logs_of(stack: Stack) -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-2500:]}"
        for log in sorted(stack.logs.glob("*.log"))
    )


async def test_two_workers_two_apis_survive_losing_a_worker(tmp_path: Path) -> None:
    timeline = Timeline()
    stack = ScaledStack(tmp_path / "stack", timeline)
    worker_b = stack.worker_b
    engine = None
    try:
        await stack.start()  # Postgres, migrations, Temporal, then workers A+B and APIs A+B
        worker_a_pid, worker_b_pid = stack.worker.pid, worker_b.pid

        driver = TwoReplicas(
            [stack.base_url, stack.api_b_url],
            CASES,
            run_id=f"scale{uuid.uuid4().hex[:6]}",
            timeline=timeline,
            poll_seconds=1.0,
        )
        for case in driver.cases:  # e-mail for every client message: one per milestone
            case.body["client"]["contact_preferences"]["channels"] = ["email", "in_app"]
        driver.deadline = now() + DRIVE_SECONDS
        drive = asyncio.create_task(driver.run())

        # SIGKILL worker A while half the cases are open and moving; nobody restarts it
        while driver.in_flight() < KILL_WHEN_IN_FLIGHT and not drive.done():
            await asyncio.sleep(0.2)
        killed_at = now()
        await stack.kill_worker()
        timeline(f"SIGKILL worker A pid {worker_a_pid} ({driver.in_flight()} cases in flight)")
        await drive
        assert not stack.worker.alive()
        assert worker_b.alive(), worker_b.tail()

        engine = make_engine(stack.postgres.url, pool_size=2)
        client = await temporal_client(stack)
        converged = await converge(stack, driver, engine, client, now() + 45, timeline)

        # every case resolved, as each API replica reports it
        refs = {case.key: case.refs for case in driver.cases}
        assert all(len(r) == 1 for r in refs.values()), (
            f"a key gave more than one case: {refs}\n{logs_of(stack)}"
        )
        workflow_ids: dict[str, str] = {}
        async with httpx.AsyncClient(timeout=10) as http:
            for case in driver.cases:
                for base in driver.base_urls:
                    seen = (await http.get(f"{base}/cases/{case.ref}", headers=OPERATOR)).json()
                    workflow_ids[str(case.ref)] = seen["workflow_id"]
                    assert seen["status"] in ("resolved", "closed"), (
                        f"{case.ref} via {base}: {seen['status']}/{seen['stage']}\n{logs_of(stack)}"
                    )
                    assert seen["resolution"] == "completed", seen
        assert converged

        # one case per Idempotency-Key, whichever replica answered (and when both raced)
        assert {key for key, *_ in driver.posts} == set(refs)
        by_key: dict[str, set[int]] = defaultdict(set)
        for key, replica, status, ref in driver.posts:
            assert status in (200, 201), (key, replica, status)
            assert ref == next(iter(refs[key])), (key, replica, ref)
            by_key[key].add(replica)
        assert all(replicas == {0, 1} for replicas in by_key.values()), by_key
        created = Counter(status for _, _, status, _ in driver.posts)
        assert created[201] == CASES, created  # one creation per key, every other answer 200
        async with engine.connect() as conn:
            rows = await conn.scalar(
                select(func.count()).select_from(Case).where(Case.idempotency_key.in_(refs))
            )
        assert rows == CASES
        workflows = [w.id async for w in client.list_workflows("CaseType='demo_onboarding'")]
        assert sorted(workflows) == sorted(workflow_ids.values()), workflows

        # exactly one e-mail per (case, milestone), and every case had its six client ones
        emails: Counter[tuple[str, str]] = Counter()
        staff: Counter[str] = Counter()
        for mail in list(stack.sendgrid.accepted):
            key = str((mail.body.get("custom_args") or {}).get("idempotency_key"))
            if ":staff-" in key:
                staff[key] += 1
                continue
            ref, milestone, *_ = key.split(":")
            emails[(ref, milestone)] += 1
        assert set(emails.values()) == {1}, {k: n for k, n in emails.items() if n > 1}
        assert set(staff.values()) <= {1}, {k: n for k, n in staff.items() if n > 1}
        milestones: dict[str, set[str]] = defaultdict(set)
        for ref, milestone in emails:
            milestones[ref].add(milestone)
        for case in driver.cases:
            got = milestones[str(case.ref)]
            assert got.issuperset(CLIENT_MILESTONES), (case.ref, got)

        # the rest of the chaos audit: accounts, SMS, webhooks, read model = workflows, no 5xx
        figures = Figures(key="scale", title="two workers, two APIs, a worker killed", cases=CASES)
        await audit(stack, driver, engine, client, figures)
        failures = {name: getattr(figures, name) for name in Figures.FAILURES}
        assert not any(failures.values()), (failures, figures.examples)
        assert figures.completed == CASES

        # both replicas served, both workers worked, and cases worker A had touched were
        # finished by worker B after A died
        assert min(driver.served[0], driver.served[1]) > CASES, driver.served
        identities = {
            ref: await started_by(client, workflow_id) for ref, workflow_id in workflow_ids.items()
        }
        a, b = (f"{pid}@" for pid in (worker_a_pid, worker_b_pid))
        ran = {who.partition("@")[0] + "@" for ids in identities.values() for who in ids}
        assert {a, b} <= ran, ran
        handed_over = [
            case.ref
            for case in driver.cases
            if case.done_at is not None
            and case.done_at > killed_at
            and any(who.startswith(a) for who in identities[str(case.ref)])
        ]
        assert handed_over, "no case that worker A had worked on was finished after it died"
    finally:
        if engine is not None:
            await dispose(engine)
        await stack.stop()
