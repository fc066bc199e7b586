"""A re-screen survives its worker being killed in the middle of a batch: the worker process
(``onboarding worker``) is SIGKILLed while the batch activity is opening alert cases, a new
worker process takes the batch over, and every hit ends with exactly one alert and exactly one
alert case, none lost and none doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from temporalio.client import Client

from integrations.sanctions.catalog import ListFiles, files_version
from schemas.monitoring import (
    RESCREEN_BATCH,
    RESCREEN_WORKFLOW,
    RescreenInput,
    RescreenTotals,
    rescreen_workflow_id,
)
from store.db import SessionFactory
from store.models import SanctionsAlert
from tests.conftest import REPO
from tests.monitoring.helpers import add_client, alert_cases_of, alerts_of, events_of
from tests.monitoring.lists import invented_people, write_sdn
from tests.waiting import eventually

CLIENTS = 40


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker"],
        cwd=REPO,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def _counts(sessions: SessionFactory, refs: list[str]) -> tuple[int, int]:
    async with sessions() as s:
        row = (
            await s.execute(
                select(func.count(), func.count(SanctionsAlert.alert_case_ref)).where(
                    SanctionsAlert.client_case_ref.in_(refs)
                )
            )
        ).one()
    return int(row[0]), int(row[1])


async def _batch_attempts(temporal: Client, workflow_id: str) -> list[int]:
    attempts: list[int] = []
    scheduled: dict[int, str] = {}
    async for event in temporal.get_workflow_handle(workflow_id).fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.activity_type.name
        if event.HasField("activity_task_started_event_attributes"):
            attrs2 = event.activity_task_started_event_attributes
            if scheduled.get(attrs2.scheduled_event_id) == RESCREEN_BATCH:
                attempts.append(attrs2.attempt)
    return attempts


async def test_killing_the_worker_mid_rescreen_neither_loses_nor_duplicates_alerts(
    database_url: str, dev_server_env: Any, sessions: SessionFactory, tmp_path: Path
) -> None:
    temporal = dev_server_env.client
    people = invented_people(CLIENTS, seed=21)
    tag = uuid.uuid4().hex[:6].upper()
    refs = [await add_client(sessions, p.client_name, prefix=f"KILL{tag}") for p in people]
    installed = tmp_path / "installed"
    alt = installed / "alt.csv"
    files = ListFiles(sdn=write_sdn(installed / "sdn.csv", people), alt=alt)
    alt.write_bytes(b"")  # no aliases
    version, _ = files_version(files)
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ)
    for name in ("TEMPORAL_API_KEY", "TEMPORAL_TLS", "API_KEYS", "PAYLOAD_KEYS"):
        env.pop(name, None)
    env.update(
        DATABASE_URL=database_url,
        TEMPORAL_ADDRESS=temporal.service_client.config.target_host,
        TEMPORAL_TASK_QUEUE=queue,
        DATA_DIR=str(tmp_path / "data"),
        SANCTIONS_SDN_PATH=str(files.sdn),
        SANCTIONS_ALT_PATH=str(alt),
    )
    log = tmp_path / "workers.log"
    first = _worker(env, log)
    second: subprocess.Popen[bytes] | None = None
    workflow_id = rescreen_workflow_id(version)
    try:
        handle = await temporal.start_workflow(
            RESCREEN_WORKFLOW,
            RescreenInput(version=version, batch_size=500, heartbeat_seconds=5),
            id=workflow_id,
            task_queue=queue,
            result_type=RescreenTotals,
        )
        # the batch has written its alerts and is opening their cases one by one: kill it
        raised, opened = await eventually(
            lambda: _counts(sessions, refs),
            lambda c: c[0] > 0,
            what="the batch to write its alerts",
            timeout=120,
            interval=0.02,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert raised == CLIENTS and opened < CLIENTS, (raised, opened)
        second = _worker(env, log)
        totals = await asyncio.wait_for(handle.result(), 240)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    assert max(await _batch_attempts(temporal, workflow_id)) >= 2, "the batch ran again"
    assert totals.new_alerts == CLIENTS and totals.cases_opened == CLIENTS
    alerts = await alerts_of(sessions, refs)
    assert sorted((a.client_case_ref, a.entry_id) for a in alerts) == sorted(
        (ref, p.entry_id) for ref, p in zip(refs, people, strict=True)
    )
    cases = await alert_cases_of(sessions, refs)
    assert sorted(c.ref for c in cases) == sorted(a.alert_id for a in alerts)
    assert all(a.alert_case_ref == a.alert_id for a in alerts)
    for ref in refs:
        assert len(await events_of(sessions, ref, "sanctions_alert_opened")) == 1, ref
    for alert in alerts:
        case = temporal.get_workflow_handle(f"sanctions-alert-{alert.alert_id}")
        described = await case.describe()
        assert described.workflow_type == "CaseWorkflow"
        await case.terminate("test over")
