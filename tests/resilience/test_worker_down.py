"""With the worker down, plain reads still answer from Postgres at once, and calls that need
the workflow answer 503 with Retry-After within seconds (never hang, never 500), while 50 of
them are in flight; a command (an update nobody takes) gives up with a 503 too."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, Interceptor, OutboundInterceptor, QueryWorkflowInput

from api.services import engine
from store.db import SessionFactory
from tests.api_engine.conftest import ADMIN, MANAGER, build_app, engine_settings
from tests.api_engine.test_engine_over_http import wait_state
from tests.conftest import new_ref, running_worker
from tests.factories import profile_json
from tests.waiting import until


class QueriesInFlight(Interceptor):
    """Counts the API's workflow queries that have gone to Temporal and not come back."""

    def __init__(self) -> None:
        self.waiting = 0

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Counting(next, self)


class _Counting(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, counter: QueriesInFlight) -> None:
        super().__init__(next)
        self._counter = counter

    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        self._counter.waiting += 1
        try:
            return await super().query_workflow(input)
        finally:
            self._counter.waiting -= 1


async def test_reads_answer_and_workflow_calls_fail_fast_while_the_worker_is_down(
    tmp_path: Path, sessions: SessionFactory, dev_server_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "COMMAND_TIMEOUT", timedelta(seconds=1))  # 10 s in production
    settings = engine_settings(tmp_path)
    ref = new_ref("DOWN")
    queries = QueriesInFlight()
    temporal = Client(**{**dev_server_env.client.config(), "interceptors": [queries]})
    async with running_worker(dev_server_env.client, sessions, settings) as worker:
        settings = settings.model_copy(update={"temporal_task_queue": worker.task_queue})
        app = build_app(settings, sessions, temporal)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            body = {"reference": ref, "client": profile_json()}
            assert (await http.post("/cases", json=body, headers=MANAGER)).status_code == 201
            # the case reaches its first wait while the worker runs
            await wait_state(http, ref, lambda s: s["stage"] == "document_collection")
    # the worker is gone now; nothing polls the task queue
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=30
    ) as http:

        async def timed(path: str) -> tuple[int, float, str | None]:
            start = time.perf_counter()
            r = await http.get(path, headers=ADMIN)
            return r.status_code, time.perf_counter() - start, r.headers.get("retry-after")

        states = [asyncio.create_task(timed(f"/cases/{ref}/state")) for _ in range(50)]
        await until(lambda: queries.waiting == 50, what="all 50 state queries to wait on Temporal")
        plain_status, plain_seconds, _ = await timed(f"/cases/{ref}")
        listing_status, listing_seconds, _ = await timed("/cases?limit=5")
        answers = await asyncio.gather(*states)
        # an update times out (the chaos suite's R1 saw a 500 here: the SDK's
        # WorkflowUpdateRPCTimeoutOrCancelledError was not translated)
        waive = await http.post(
            f"/cases/{ref}/documents/waive", json={"note": "seen"}, headers=MANAGER
        )

    assert plain_status == 200 and listing_status == 200
    assert plain_seconds < 1.0 and listing_seconds < 1.0  # from Postgres, not held up
    assert {code for code, _, _ in answers} == {503}
    assert all(retry is not None for _, _, retry in answers)
    assert max(seconds for _, seconds, _ in answers) < 5.0  # the limit
    assert waive.status_code == 503, waive.text
    assert waive.headers["retry-after"] and "may still take effect" in waive.json()["detail"]
