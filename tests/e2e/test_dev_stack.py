"""`make run`'s stack: starts everything, stops everything on Ctrl-C, and keeps data across runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cli.devstack import port_open
from tests.conftest import new_ref
from tests.e2e.conftest import CASE_MANAGER, CLIENT_APP, free_port
from tests.factories import profile_json

pytestmark = pytest.mark.e2e


def start_stack(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # its own session, so we can send Ctrl-C to the whole group as a terminal would
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "run"],
        env=env,
        start_new_session=True,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_until(check, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"stack exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"timed out:\n{log.read_text()[-4000:]}")


def ctrl_c(proc: subprocess.Popen[bytes]) -> int:
    os.killpg(proc.pid, signal.SIGINT)
    return proc.wait(timeout=40)


def test_run_stops_cleanly_on_ctrl_c_and_keeps_cases(tmp_path):
    api, grpc, ui = free_port(), free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "TEMPORAL_ADDRESS", "API_KEYS", "TEMPORAL_TASK_QUEUE"}
    }
    env.update(
        DATA_DIR=str(tmp_path / "data"),
        API_PORT=str(api),
        TEMPORAL_PORT=str(grpc),
        TEMPORAL_UI_PORT=str(ui),
    )
    base = f"http://127.0.0.1:{api}"
    log = tmp_path / "run.log"
    ref = new_ref("RUN")

    proc = start_stack(env, log)
    try:
        wait_until(lambda: "Ctrl-C stops everything" in log.read_text(), 90, proc, log)
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        assert port_open("127.0.0.1", ui), "Temporal UI is not listening"
        banner = log.read_text()
        assert f"http://localhost:{ui}" in banner and "dev-case-manager-key" in banner
        created = httpx.post(
            f"{base}/cases",
            json={"reference": ref, "client": profile_json()},
            headers=CLIENT_APP,
            timeout=30,
        )
        assert created.status_code == 201, created.text
        wait_until(
            lambda: (
                httpx.get(f"{base}/cases/{ref}", headers=CLIENT_APP).json()["stage"]
                == "document_collection"
            ),
            30,
            proc,
            log,
        )
    finally:
        assert ctrl_c(proc) == 0
    for port in (api, grpc, ui):
        assert not port_open("127.0.0.1", port), f"port {port} still open after Ctrl-C"
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists()

    proc = start_stack(env, log)
    try:
        wait_until(lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 200, 90, proc, log)
        case = httpx.get(f"{base}/cases/{ref}", headers=CLIENT_APP).json()
        assert (case["status"], case["stage"]) == ("waiting_on_client", "document_collection")
        moved = httpx.post(
            f"{base}/cases/{ref}/documents-received",
            json={"actor": "cm", "waive_verification": True, "note": "seen at branch"},
            headers=CASE_MANAGER,
            timeout=30,
        )
        assert moved.status_code == 202, moved.text
        wait_until(
            lambda: (
                httpx.get(f"{base}/cases/{ref}", headers=CLIENT_APP).json()["stage"]
                != "document_collection"
            ),
            30,
            proc,
            log,
        )
    finally:
        assert ctrl_c(proc) == 0
