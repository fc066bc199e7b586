"""Fixtures for the console and the access matrix: the in-process app (every router wired,
static files mounted) over real Postgres and the Temporal dev server, and console sign-in."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from api.app import create_app
from core.settings import DEV_CONSOLE_PASSWORD, Role, Settings
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import Case
from tests.conftest import new_ref, test_settings
from tests.factories import profile

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parents[2] / "api" / "web" / "static"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# One API key per role, so the matrix can try every role with a key.
ROLE_KEYS: dict[Role, str] = {role: f"test-{role.value.replace('_', '-')}-key" for role in Role}
# The dev console users, one per role (see core.settings.DEV_CONSOLE_USERS).
ROLE_USERS: dict[Role, str] = {
    Role.CASE_MANAGER: "maria",
    Role.COMPLIANCE_REVIEWER: "rita",
    Role.RELATIONSHIP_MANAGER: "ravi",
    Role.OPERATOR: "olga",
    Role.ADMIN: "ada",
}


def route_table(app: FastAPI) -> Iterator[tuple[str, set[str] | None, Any]]:
    """(path, methods, endpoint) of every route, through included routers too (FastAPI
    0.16x keeps included routers nested instead of copying their routes)."""
    from fastapi import routing

    walker = getattr(routing, "iter_route_contexts", None)
    items = walker(app.router.routes) if walker else app.router.routes
    for item in items:
        path = getattr(item, "path", None)
        if path is None:
            continue
        yield str(path), getattr(item, "methods", None), getattr(item, "endpoint", None)


def _has_module_routes(app: FastAPI, module: str) -> bool:
    return any(
        getattr(endpoint, "__module__", None) == module for _, _, endpoint in route_table(app)
    )


@pytest.fixture(scope="module")
def web_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("web")
    return test_settings(
        data_dir=root,
        blob_dir=root / "blobs",
        api_keys={key: role for role, key in ROLE_KEYS.items()},
    )


def build_app(settings: Settings, sessions: SessionFactory, temporal: Any) -> FastAPI:
    app = create_app(settings)
    # ASGITransport does not run the lifespan: hand the app its state directly
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.temporal = temporal
    return app


@pytest.fixture
def web_app(web_settings: Settings, sessions: SessionFactory, dev_server_env: Any) -> FastAPI:
    return build_app(web_settings, sessions, dev_server_env.client)


def client_for(app: FastAPI) -> httpx.AsyncClient:
    """An in-process client; it keeps cookies, so one client is one browser session."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def csrf_from(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, username: str) -> None:
    """Sign in through the login form, as a browser would."""
    page = await client.get("/console/login")
    assert page.status_code == 200
    response = await client.post(
        "/console/login",
        data={
            "csrf_token": csrf_from(page.text),
            "username": username,
            "password": DEV_CONSOLE_PASSWORD,
            "next": "/console",
        },
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console"


async def page_csrf(client: httpx.AsyncClient, path: str = "/console") -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return csrf_from(page.text)


@dataclass
class Console:
    """A signed-in browser session in the console."""

    client: httpx.AsyncClient
    username: str

    async def post_form(self, path: str, **fields: str) -> httpx.Response:
        """Post a console form with this session's CSRF token (taken from a page)."""
        token = await page_csrf(self.client)
        return await self.client.post(path, data={"csrf_token": token, **fields})


@pytest.fixture
async def console_as(web_app: FastAPI) -> AsyncIterator[Any]:
    """``await console_as("maria")``: a signed-in console session for that user."""
    clients: list[httpx.AsyncClient] = []

    async def make(username: str) -> Console:
        client = client_for(web_app)
        clients.append(client)
        await sign_in(client, username)
        return Console(client=client, username=username)

    yield make
    for client in clients:
        await client.aclose()


async def insert_case(
    sessions: SessionFactory, *, status: str = "open", prefix: str = "WEB", **values: Any
) -> str:
    """A case row as the API leaves it (no workflow behind it), with read-model fields set."""
    ref = new_ref(prefix)
    async with sessions() as s:
        await s.execute(
            insert_draft_case(ref=ref, client=profile(**values.pop("client", {})), requested_by="t")
        )
        await s.execute(update(Case).where(Case.ref == ref).values(status=status, **values))
        await s.commit()
    return ref


async def mark_started(sessions: SessionFactory, ref: str) -> None:
    """As ``POST /cases`` does once the workflow started: the draft row becomes open."""
    async with sessions() as s:
        await s.execute(
            update(Case).where(Case.ref == ref, Case.status == "draft").values(status="open")
        )
        await s.commit()
