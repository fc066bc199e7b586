"""Fixtures for document tests: an in-process API with a throwaway blob directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from api.app import create_app
from core.settings import Settings
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import Case
from tests.conftest import new_ref, test_settings
from tests.factories import profile

UPLOAD_LIMIT = 64 * 1024
CLIENT = {"X-API-Key": "dev-client-app-key"}
MANAGER = {"X-API-Key": "dev-case-manager-key"}
OPERATOR = {"X-API-Key": "dev-operator-key"}


@pytest.fixture
def doc_settings(tmp_path: Path) -> Settings:
    return test_settings(
        blob_dir=tmp_path / "blobs", data_dir=tmp_path, max_upload_bytes=UPLOAD_LIMIT
    )


@pytest.fixture
async def api(
    doc_settings: Settings, sessions: SessionFactory, dev_server_env
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(doc_settings)
    # ASGITransport does not run the lifespan: hand the app its state directly
    app.state.settings = doc_settings
    app.state.sessions = sessions
    app.state.temporal = dev_server_env.client
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def make_case(sessions: SessionFactory, status: str = "open") -> str:
    """A case row as the API leaves it (draft, or open once its workflow was started)."""
    ref = new_ref("DOC")
    async with sessions() as s:
        await s.execute(insert_draft_case(ref=ref, client=profile(), requested_by="test"))
        if status != "draft":
            await s.execute(update(Case).where(Case.ref == ref).values(status=status))
        await s.commit()
    return ref
