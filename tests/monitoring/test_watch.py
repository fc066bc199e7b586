"""The ``sanctions-list-watch`` schedule's workflow: a new list in the watched folder is put in
service and re-screened against, once; the same list again is nothing new."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from schemas.monitoring import WATCH_WORKFLOW, WatchInput, WatchResult
from store.db import SessionFactory
from tests.engine.cleanup import engine_worker
from tests.monitoring.helpers import monitoring_settings, rescreened, version_row
from tests.monitoring.lists import invented_people, write_sdn


async def test_the_watch_loads_a_new_list_once(
    dev_server_env: Any, sessions: SessionFactory, tmp_path: Path
) -> None:
    temporal = dev_server_env.client
    watched = tmp_path / "watched"
    write_sdn(watched / "sdn.csv", invented_people(2, seed=41))
    settings = monitoring_settings(tmp_path / "installed", sanctions_watch_dir=watched)
    async with engine_worker(temporal, sessions, settings) as worker:

        async def watch(run: str) -> WatchResult:
            return await temporal.execute_workflow(
                WATCH_WORKFLOW,
                WatchInput(requested_by="schedule"),
                id=f"watch-{run}-{worker.task_queue}",
                task_queue=worker.task_queue,
                result_type=WatchResult,
            )

        first = await watch("1")
        assert first.checked == str(watched)
        assert first.load is not None and first.load.rescreen_started
        assert (tmp_path / "installed" / "sdn.csv").read_bytes() == (
            watched / "sdn.csv"
        ).read_bytes()
        await rescreened(temporal, first.load.rescreen_workflow_id)
        recorded = await version_row(sessions, first.load.version)
        assert recorded is not None and recorded.loaded_by == "schedule"
        assert recorded.status == "rescreened"

        second = await watch("2")
        assert second.load is None and second.detail == "no new version"

        write_sdn(watched / "sdn.csv", invented_people(3, seed=41))
        third = await watch("3")
        assert third.load is not None and third.load.version != first.load.version
        await rescreened(temporal, third.load.rescreen_workflow_id)
