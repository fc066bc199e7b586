"""Every log line of a real run is JSON, carries its case, and holds no PII and no secret.

The stack runs as in tests/e2e (``onboarding worker`` and ``onboarding api`` as processes on
the dev server and Postgres), but with its own log files, SendGrid pointed at the stand-in
with a real-looking key, the worker's Prometheus endpoint on, and tracing on (OTLP to a
stub collector). One case with a distinctive client goes from POST /cases to resolved over
HTTP; then every line both processes wrote is read back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.e2e.conftest import (
    CASE_MANAGER,
    CLIENT_APP,
    OPERATOR,
    STACK_API_KEYS,
    _wait_ready,
    free_port,
)
from tests.factories import profile_json
from tests.standins.sendgrid_standin import SendGridStandin, running_sendgrid_standin
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

TAG = uuid.uuid4().hex[:8]
CLIENT_NAME = f"Zephyrine Quillfeather {TAG}"
CLIENT_EMAIL = f"zephyrine.q.{TAG}@obs-test.example"
CLIENT_PHONE = f"+4477009{int(TAG, 16) % 100000:05d}"
SENDGRID_KEY = f"SG.obs-{TAG}-secret-key-value"
REF = f"OBS-{TAG.upper()}"


class _Collector(BaseHTTPRequestHandler):
    """Just enough of an OTLP/HTTP receiver: 200 to every export, counted."""

    received: list[str] = []  # one collector per test module

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:  # quiet
        pass


@dataclass
class Stack:
    base_url: str
    logs: Path
    worker_metrics: str
    collector: list[str]
    sendgrid: SendGridStandin
    procs: list[subprocess.Popen[bytes]]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def stack(
    database_url: str, dev_server_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("obs-logs")
    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    port, metrics_port = free_port(), free_port()
    with running_sendgrid_standin(api_key=SENDGRID_KEY) as sendgrid:
        env = dict(os.environ)
        otel = [name for name in env if name.startswith("OTEL_")]
        for name in ("TEMPORAL_API_KEY", "TEMPORAL_TLS", "API_KEYS", *otel):
            env.pop(name, None)
        env.update(
            DATABASE_URL=database_url,
            TEMPORAL_ADDRESS=dev_server_env.client.service_client.config.target_host,
            TEMPORAL_TASK_QUEUE=f"obs-{TAG}",
            DATA_DIR=str(tmp_path_factory.mktemp("obs-data")),
            API_KEYS=json.dumps({key: role.value for key, role in STACK_API_KEYS.items()}),
            SENDGRID_API_KEY=SENDGRID_KEY,
            SENDGRID_HOST=sendgrid.base_url,
            WORKER_METRICS_ADDRESS=f"127.0.0.1:{metrics_port}",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.server_address[1]}",
            OTEL_BSP_SCHEDULE_DELAY="200",
        )
        cmd = [sys.executable, "-m", "cli.main"]
        procs = [
            subprocess.Popen(
                [*cmd, "worker"],
                env=env,
                stdout=(logs / "worker.log").open("wb"),
                stderr=subprocess.STDOUT,
            ),
            subprocess.Popen(
                [*cmd, "api", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=(logs / "api.log").open("wb"),
                stderr=subprocess.STDOUT,
            ),
        ]
        running = Stack(
            base_url=f"http://127.0.0.1:{port}",
            logs=logs,
            worker_metrics=f"http://127.0.0.1:{metrics_port}/metrics",
            collector=_Collector.received,
            sendgrid=sendgrid,
            procs=procs,
        )
        try:
            _wait_ready(f"{running.base_url}/readyz", procs, logs)
            yield running
        finally:
            running.stop()
            collector.shutdown()


async def _poll(http: httpx.AsyncClient, until: Any, timeout: float = 60) -> dict[str, Any]:
    async def read() -> Any:
        answer = await http.get(f"/cases/{REF}", headers=OPERATOR)
        return answer.json() if answer.status_code == 200 else {}

    return dict(await eventually(read, lambda c: bool(c) and until(c), timeout=timeout))


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


async def test_every_line_is_json_with_its_case_and_nothing_private(stack: Stack):
    client = profile_json(name=CLIENT_NAME, email=CLIENT_EMAIL, phone=CLIENT_PHONE)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        created = await http.post(
            "/cases", json={"reference": REF, "client": client}, headers=CLIENT_APP
        )
        assert created.status_code == 201, created.text
        await _poll(http, lambda c: c["stage"] == "document_collection")
        waived = await http.post(  # documents seen at the branch: no files to read
            f"/cases/{REF}/documents-received",
            json={"actor": "maria", "waive_verification": True, "note": "originals seen"},
            headers=CASE_MANAGER,
        )
        assert waived.status_code in (200, 202), waived.text
        await _poll(http, lambda c: c["stage"] == "final_review")
        signed = await http.post(
            f"/cases/{REF}/final-review", json={"reviewer": "fred"}, headers=CASE_MANAGER
        )
        assert signed.status_code == 200, signed.text
        await _poll(http, lambda c: c["status"] == "resolved")
        assert (await http.get(f"/cases/{REF}/notifications", headers=CASE_MANAGER)).is_success
        assert (await http.get("/cases/NO-SUCH-CASE", headers=OPERATOR)).status_code == 404
        assert stack.sendgrid.accepted, "the e-mails went to the provider (stand-in)"
        scraped = (await http.get(stack.worker_metrics)).text
        assert "onboarding_stage_entries_total" in scraped
        assert "temporal_workflow_task_execution_latency" in scraped
        await eventually(
            lambda: _value(list(stack.collector)), what="spans exported over OTLP/HTTP"
        )
    stack.stop()  # flush: every line each process will write is on disk

    secrets = [SENDGRID_KEY, *STACK_API_KEYS]
    private = [CLIENT_NAME, CLIENT_EMAIL, CLIENT_EMAIL.split("@")[0], CLIENT_PHONE]
    about_case: dict[str, list[dict[str, Any]]] = {}
    for name in ("api.log", "worker.log"):
        lines = _lines(stack.logs / name)
        assert lines, f"{name} is empty"
        parsed = []
        for n, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except ValueError:
                pytest.fail(f"{name}:{n} is not JSON: {line[:300]}")
            assert isinstance(record, dict) and {"ts", "level", "event"} <= set(record), line
            for value in private + secrets:
                assert value not in line, f"{name}:{n} leaks {value[:6]}…: {line[:300]}"
            parsed.append(record)
        # a line that names the case (message, workflow id, anything) carries it as case_ref
        mentioning = [r for r in parsed if REF in json.dumps(r)]
        for record in mentioning:
            assert record.get("case_ref") == REF, record
        about_case[name] = [r for r in parsed if r.get("case_ref") == REF]

    api_lines, worker_lines = about_case["api.log"], about_case["worker.log"]
    assert any(r.get("http", {}).get("route") == "/cases" for r in api_lines), api_lines
    assert any(r.get("http", {}).get("route") == "/cases/{ref}" for r in api_lines)
    # the worker's lines of the case: activities (with the run) and the provider adapter
    activity_lines = [r for r in worker_lines if r.get("activity")]
    assert activity_lines, worker_lines[:5]
    assert all(r["workflow_id"] == f"onboarding-{REF}" and r.get("run_id") for r in activity_lines)
    assert any(r["logger"].startswith("integrations.sendgrid") for r in worker_lines)
    # tracing is on: request and activity lines carry the trace they belong to
    assert all(len(r.get("trace_id", "")) == 32 for r in activity_lines), activity_lines[:3]
    create = next(r for r in api_lines if r.get("http", {}).get("route") == "/cases")
    assert len(create.get("trace_id", "")) == 32, create


async def _value(value: Any) -> Any:
    return value
