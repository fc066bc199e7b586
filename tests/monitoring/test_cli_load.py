"""``onboarding sanctions load`` as an operator runs it: a real process against the test
database and the Temporal dev server (no worker: the re-screen just has to be started)."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowExecutionStatus

from integrations.sanctions.catalog import ListFiles, files_version
from store.db import SessionFactory
from tests.conftest import REPO
from tests.monitoring.helpers import version_row
from tests.monitoring.lists import invented_people, write_sdn


async def _onboarding(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_load_installs_the_list_records_its_version_and_starts_one_rescreen(
    database_url: str, dev_server_env: Any, sessions: SessionFactory, tmp_path: Path
) -> None:
    temporal = dev_server_env.client
    download = tmp_path / "download"
    write_sdn(download / "sdn.csv", invented_people(1, seed=31))
    (download / "alt.csv").write_bytes(b"")
    live = tmp_path / "live"
    env = dict(os.environ)
    for name in ("TEMPORAL_API_KEY", "TEMPORAL_TLS", "PAYLOAD_KEYS"):
        env.pop(name, None)
    env.update(
        DATABASE_URL=database_url,
        TEMPORAL_ADDRESS=temporal.service_client.config.target_host,
        TEMPORAL_TASK_QUEUE=f"nobody-{uuid.uuid4().hex[:8]}",
        DATA_DIR=str(tmp_path / "data"),
        SANCTIONS_SDN_PATH=str(live / "sdn.csv"),
        SANCTIONS_ALT_PATH=str(live / "alt.csv"),
    )
    version, _ = files_version(ListFiles(sdn=download / "sdn.csv", alt=download / "alt.csv"))
    workflow_id = f"rescreen-{version}"
    try:
        code, out, err = await _onboarding(
            env, "sanctions", "load", str(download), "--source", "OFAC download 2026-12-02"
        )
        assert code == 0, err
        assert out.splitlines() == [
            f"list version {version}: 3 entries",
            f"installed {live / 'sdn.csv'}",
            f"installed {live / 'alt.csv'}",
            f"re-screen started: workflow {workflow_id}",
        ]
        assert (live / "sdn.csv").read_bytes() == (download / "sdn.csv").read_bytes()
        recorded = await version_row(sessions, version)
        assert recorded is not None
        assert (recorded.source, recorded.loaded_by, recorded.status) == (
            "OFAC download 2026-12-02",
            "cli",
            "loaded",
        )
        assert recorded.rescreen_workflow_id == workflow_id
        assert recorded.files["sdn"] == {
            "path": str(live / "sdn.csv"),
            "from": str(download / "sdn.csv"),
            "sha256": files_version(ListFiles(sdn=live / "sdn.csv"))[1]["sdn"],
        }
        described = await temporal.get_workflow_handle(workflow_id).describe()
        assert described.status == WorkflowExecutionStatus.RUNNING

        code, out, err = await _onboarding(env, "sanctions", "load", str(download))
        assert code == 0, err
        assert out.splitlines() == [
            f"list version {version}: 3 entries (loaded before)",
            "files unchanged",
            f"re-screen not started again: {workflow_id} was started before",
        ]

        junk = tmp_path / "notes.csv"
        junk.write_text("hello,world\n")
        code, out, err = await _onboarding(env, "sanctions", "load", str(junk))
        assert code == 2 and out == ""
        assert "not a list this service reads" in err
    finally:
        await temporal.get_workflow_handle(workflow_id).terminate("test over")
