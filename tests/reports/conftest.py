"""Fixtures for the reports: the in-process app over the shared test Postgres. The reports
read the database only, so no Temporal server (or worker) is started."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from core.settings import Settings
from store.db import SessionFactory
from tests.api_engine.conftest import build_app, engine_settings


@pytest.fixture(scope="module")
def report_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root: Path = tmp_path_factory.mktemp("reports")
    return engine_settings(root)


@pytest.fixture
def report_app(report_settings: Settings, sessions: SessionFactory) -> FastAPI:
    return build_app(report_settings, sessions, temporal=None)


@pytest.fixture
async def report_api(report_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=report_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
