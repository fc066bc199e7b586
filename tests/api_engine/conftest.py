"""Fixtures for the case engine's HTTP API: the in-process app over real Postgres and the
Temporal dev server, with one API key per role (two per approver role, so two different
identities can approve)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from api.app import create_app
from core.settings import Role, Settings
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import Case
from tests.conftest import new_ref, running_worker, test_settings
from tests.factories import profile

KEYS: dict[str, Role] = {
    "t-client-app": Role.CLIENT_APP,
    "t-case-manager": Role.CASE_MANAGER,
    "t-case-manager-2": Role.CASE_MANAGER,
    "t-compliance": Role.COMPLIANCE_REVIEWER,
    "t-compliance-2": Role.COMPLIANCE_REVIEWER,
    "t-relationship": Role.RELATIONSHIP_MANAGER,
    "t-operator": Role.OPERATOR,
    "t-admin": Role.ADMIN,
}
CLIENT = {"X-API-Key": "t-client-app"}
MANAGER = {"X-API-Key": "t-case-manager"}
MANAGER_2 = {"X-API-Key": "t-case-manager-2"}
REVIEWER = {"X-API-Key": "t-compliance"}
REVIEWER_2 = {"X-API-Key": "t-compliance-2"}
RM = {"X-API-Key": "t-relationship"}
OPERATOR = {"X-API-Key": "t-operator"}
ADMIN = {"X-API-Key": "t-admin"}


def engine_settings(root: Path, **overrides: Any) -> Settings:
    return test_settings(data_dir=root, blob_dir=root / "blobs", api_keys=dict(KEYS), **overrides)


def build_app(settings: Settings, sessions: SessionFactory, temporal: Any) -> FastAPI:
    app = create_app(settings)
    # ASGITransport does not run the lifespan: hand the app its state (case types load lazily)
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.temporal = temporal
    return app


@contextlib.asynccontextmanager
async def serving_api(
    root: Path,
    sessions: SessionFactory,
    temporal: Any,
    *case_type_dirs: Path,
    **overrides: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """The API in process, with a real worker on its own task queue behind it (and any extra
    case type folders loaded by both; ``overrides`` are more settings for both)."""
    base = engine_settings(root, case_type_dirs_extra=list(case_type_dirs), **overrides)
    async with running_worker(temporal, sessions, base) as worker:
        settings = base.model_copy(update={"temporal_task_queue": worker.task_queue})
        app = build_app(settings, sessions, temporal)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http:
            yield http


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    return engine_settings(tmp_path)


@pytest.fixture
async def api(
    api_settings: Settings, sessions: SessionFactory, dev_server_env: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(api_settings, sessions, dev_server_env.client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def insert_case(
    sessions: SessionFactory,
    *,
    case_type: str = "order_approval",
    stage: str = "approval",
    access_roles: Sequence[str] = (),
    status: str = "open",
    engine: str = "case",
) -> str:
    """A case row written straight into the read model (no workflow behind it)."""
    ref = new_ref("ENG")
    async with sessions() as s:
        await s.execute(
            insert_draft_case(
                ref=ref,
                client=profile(),
                requested_by="test",
                case_type=case_type,
                case_type_version="test",
                engine=engine,
                workflow_id=f"test-{ref}",
                first_stage=stage,
                access_roles=list(access_roles),
            )
        )
        await s.execute(update(Case).where(Case.ref == ref).values(status=status))
        await s.commit()
    return ref
