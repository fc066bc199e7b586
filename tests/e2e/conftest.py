"""The real stack for end-to-end tests: `onboarding worker` and `onboarding api` as processes,
against a real Temporal dev server and real Postgres, reached over HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from core.settings import DEV_API_KEYS, Role

CLIENT_APP = {"X-API-Key": "dev-client-app-key"}
CASE_MANAGER = {"X-API-Key": "dev-case-manager-key"}
OPERATOR = {"X-API-Key": "dev-operator-key"}
# Approvals are given by the authenticated identity (one per key), so tests that need two
# approvers use two keys. The stack accepts the dev keys plus these.
REVIEWER = {"X-API-Key": "e2e-compliance-reviewer-key"}
REVIEWER_2 = {"X-API-Key": "e2e-compliance-reviewer-2-key"}
CASE_MANAGER_2 = {"X-API-Key": "e2e-case-manager-2-key"}
STACK_API_KEYS = {
    **DEV_API_KEYS,
    REVIEWER["X-API-Key"]: Role.COMPLIANCE_REVIEWER,
    REVIEWER_2["X-API-Key"]: Role.COMPLIANCE_REVIEWER,
    CASE_MANAGER_2["X-API-Key"]: Role.CASE_MANAGER,
}


def actor_of(headers: dict[str, str]) -> str:
    """The actor the API records for an API key: ``<role>:<key id>``."""
    key = headers["X-API-Key"]
    return f"{STACK_API_KEYS[key].value}:{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveStack:
    base_url: str
    temporal: Client
    task_queue: str
    logs: Path


def _wait_ready(url: str, procs: list[subprocess.Popen[bytes]], logs: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                pytest.fail(f"process exited early: {p.args!r}\n{_tail(logs)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"stack not ready after 60s\n{_tail(logs)}")


def _tail(logs: Path) -> str:
    return "\n".join(f"--- {f.name}\n{f.read_text()[-3000:]}" for f in sorted(logs.glob("*.log")))


@pytest.fixture(scope="session")
def live_stack(
    database_url: str, dev_server_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    logs = tmp_path_factory.mktemp("stack-logs")
    port = free_port()
    task_queue = f"e2e-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        TEMPORAL_ADDRESS=dev_server_env.client.service_client.config.target_host,
        TEMPORAL_TASK_QUEUE=task_queue,
        DATA_DIR=str(tmp_path_factory.mktemp("data")),
    )
    for name in ("TEMPORAL_API_KEY", "TEMPORAL_TLS", "API_KEYS"):
        env.pop(name, None)
    env["API_KEYS"] = json.dumps({key: role.value for key, role in STACK_API_KEYS.items()})
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
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{base}/readyz", procs, logs)
        yield LiveStack(
            base_url=base, temporal=dev_server_env.client, task_queue=task_queue, logs=logs
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
