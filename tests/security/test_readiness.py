"""/readyz tells an orchestrator (and the person reading it) which dependency is down."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client

from api.app import create_app
from store.db import SessionFactory, make_engine, make_session_factory
from tests.conftest import test_settings


def closed_port() -> int:
    """A local port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def app_with(sessions: Any, temporal: Any) -> FastAPI:
    settings = test_settings()
    app = create_app(settings)
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.temporal = temporal
    return app


async def readyz(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/readyz")


@pytest.fixture
async def dead_database() -> AsyncIterator[SessionFactory]:
    engine = make_engine(f"postgresql+asyncpg://nobody:nothing@127.0.0.1:{closed_port()}/none")
    yield make_session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def dead_temporal() -> Client:
    return await Client.connect(f"127.0.0.1:{closed_port()}", lazy=True)


async def test_ready_when_both_answer(sessions: SessionFactory, dev_server_env: Any) -> None:
    response = await readyz(app_with(sessions, dev_server_env.client))
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "temporal": "ok"}}


async def test_names_postgres_when_it_is_down(
    dead_database: SessionFactory, dev_server_env: Any
) -> None:
    response = await readyz(app_with(dead_database, dev_server_env.client))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["unavailable"] == ["database"]
    assert body["checks"]["temporal"] == "ok"
    assert body["checks"]["database"].startswith("unavailable (")


async def test_names_temporal_when_it_is_down(
    sessions: SessionFactory, dead_temporal: Client
) -> None:
    response = await readyz(app_with(sessions, dead_temporal))
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    body = response.json()
    assert body["unavailable"] == ["temporal"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["temporal"].startswith("unavailable (")


async def test_names_both_when_both_are_down(
    dead_database: SessionFactory, dead_temporal: Client
) -> None:
    response = await readyz(app_with(dead_database, dead_temporal))
    assert response.status_code == 503
    assert response.json()["unavailable"] == ["database", "temporal"]
