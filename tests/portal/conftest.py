"""Portal fixtures: the in-process app (with the portal router) over real Postgres and the
Temporal dev server, a worker for running cases, and helpers to mint links and post forms."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from api.app import create_app
from core.security import mint_portal_token
from core.settings import Settings
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import Case
from tests.conftest import RunningWorker, new_ref, running_worker, test_settings
from tests.factories import profile
from tests.waiting import eventually

UPLOAD_LIMIT = 256 * 1024
CSRF_FIELD = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@pytest.fixture(scope="module")
def portal_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("portal")
    return test_settings(blob_dir=root / "blobs", data_dir=root, max_upload_bytes=UPLOAD_LIMIT)


def build_app(settings: Settings, sessions: SessionFactory, temporal: Any) -> FastAPI:
    app = create_app(settings)
    # ASGITransport does not run the lifespan: hand the app its state directly
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.temporal = temporal
    return app


@pytest.fixture
def app(portal_settings: Settings, sessions: SessionFactory, dev_server_env: Any) -> FastAPI:
    return build_app(portal_settings, sessions, dev_server_env.client)


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


@pytest.fixture(scope="module")
async def worker(
    dev_server_env: Any, sessions: SessionFactory, portal_settings: Settings
) -> AsyncIterator[RunningWorker]:
    async with running_worker(dev_server_env.client, sessions, portal_settings) as w:
        yield w


def token_for(
    settings: Settings,
    ref: str,
    *,
    ttl: timedelta = timedelta(days=30),
    now: datetime | None = None,
) -> str:
    return mint_portal_token(
        ref,
        secret=settings.portal_secret.get_secret_value(),
        ttl=ttl,
        now=now or datetime.now(UTC),
    )


async def make_case(
    sessions: SessionFactory,
    *,
    status: str = "open",
    stage: str = "document_collection",
    **who: Any,
) -> str:
    """A case row as the read model holds it (no workflow behind it)."""
    ref = new_ref("P")
    async with sessions() as s:
        await s.execute(insert_draft_case(ref=ref, client=profile(**who), requested_by="test"))
        await s.execute(update(Case).where(Case.ref == ref).values(status=status, stage=stage))
        await s.commit()
    return ref


async def csrf_of(api: httpx.AsyncClient, token: str) -> str:
    page = await api.get(f"/portal/{token}")
    assert page.status_code == 200, page.text
    found = CSRF_FIELD.search(page.text)
    assert found, "the page carries no csrf field"
    return found.group(1)


async def wait_for_case_row(
    sessions: SessionFactory, ref: str, *, stage: str | None = None, timeout: float = 30
) -> Case:
    """Poll the read model until the workflow's projection wrote the case (at ``stage``)."""

    async def row() -> Case | None:
        async with sessions() as s:
            return await s.scalar(select(Case).where(Case.ref == ref))

    found = await eventually(
        row,
        lambda r: r is not None and (stage is None or r.stage == stage),
        what=f"case {ref}'s row" + (f" at {stage}" if stage else ""),
        timeout=timeout,
    )
    assert found is not None
    return found


def blob_root(settings: Settings) -> Path:
    assert settings.blob_dir is not None
    return settings.blob_dir
