"""Throttling: failed console sign-ins per username + address, and portal link use. Over the
limit a person gets 429 with Retry-After and a clear message, and the attempt does nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from api.app import create_app
from core.settings import DEV_CONSOLE_PASSWORD, Settings
from store.db import SessionFactory
from store.models import Case
from tests.conftest import test_settings
from tests.portal.conftest import csrf_of, make_case, token_for

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def app_for(settings: Settings, **state: Any) -> FastAPI:
    app = create_app(settings)
    # ASGITransport does not run the lifespan: hand the app its state directly
    app.state.settings = settings
    for name, value in state.items():
        setattr(app.state, name, value)
    return app


def browser(app: FastAPI, address: str = "203.0.113.7") -> httpx.AsyncClient:
    """One browser (it keeps cookies) at one client address."""
    transport = httpx.ASGITransport(app=app, client=(address, 50123))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await client.get("/console/login")
    assert page.status_code == 200
    found = CSRF.search(page.text)
    assert found
    return await client.post(
        "/console/login",
        data={
            "csrf_token": found.group(1),
            "username": username,
            "password": password,
            "next": "/console",
        },
    )


@pytest.fixture
async def console_app(sessions: SessionFactory) -> FastAPI:
    # sign-in reads console_credentials (upgraded password hashes), so it needs Postgres
    return app_for(test_settings(), sessions=sessions)


async def test_sixth_failed_sign_in_is_refused_even_with_the_right_password(
    console_app: FastAPI,
) -> None:
    async with browser(console_app) as client:
        for _ in range(5):
            wrong = await sign_in(client, "maria", "not-her-password")
            assert wrong.status_code == 401
            assert "Unknown username or password." in wrong.text
        refused = await sign_in(client, "maria", DEV_CONSOLE_PASSWORD)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert "Too many failed sign-ins" in refused.text
        # the attempt did nothing: still signed out (signed in, the form would redirect)
        form = await client.get("/console/login")
        assert form.status_code == 200
        assert 'name="password"' in form.text


async def test_other_users_and_other_addresses_are_unaffected(console_app: FastAPI) -> None:
    async with browser(console_app) as attacker:
        for _ in range(5):
            assert (await sign_in(attacker, "maria", "guess")).status_code == 401
        assert (await sign_in(attacker, "maria", "guess")).status_code == 429
        # another user from the same address still signs in
        assert (await sign_in(attacker, "rita", DEV_CONSOLE_PASSWORD)).status_code == 303
    async with browser(console_app, "198.51.100.20") as maria:
        # maria herself, from her own address, is not locked out by someone else's guesses
        ok = await sign_in(maria, "maria", DEV_CONSOLE_PASSWORD)
        assert ok.status_code == 303
        assert ok.headers["location"] == "/console"


async def test_successful_sign_ins_do_not_count(console_app: FastAPI) -> None:
    for _ in range(8):
        async with browser(console_app) as client:
            assert (await sign_in(client, "maria", DEV_CONSOLE_PASSWORD)).status_code == 303


async def test_an_address_guessing_many_usernames_is_throttled(sessions: SessionFactory) -> None:
    app = app_for(test_settings(login_failures_per_address="3/minute"), sessions=sessions)
    async with browser(app) as client:
        for name in ("maria", "rita", "omar"):
            assert (await sign_in(client, name, "guess")).status_code == 401
        refused = await sign_in(client, "ravi", DEV_CONSOLE_PASSWORD)
        assert refused.status_code == 429
        assert "Retry-After" in refused.headers


async def test_each_app_starts_with_fresh_counters(sessions: SessionFactory) -> None:
    settings = test_settings(login_failures_per_user="1/minute")
    async with browser(app_for(settings, sessions=sessions)) as client:
        assert (await sign_in(client, "maria", "guess")).status_code == 401
        assert (await sign_in(client, "maria", "guess")).status_code == 429
    async with browser(app_for(settings, sessions=sessions)) as client:
        assert (await sign_in(client, "maria", DEV_CONSOLE_PASSWORD)).status_code == 303


# ------------------------------------------------------------------ portal
@pytest.fixture
def portal_settings(tmp_path: Any) -> Settings:
    return test_settings(
        data_dir=tmp_path, blob_dir=tmp_path / "blobs", portal_requests_per_token="3/minute"
    )


@pytest.fixture
async def portal(
    portal_settings: Settings, sessions: SessionFactory, dev_server_env: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = app_for(portal_settings, sessions=sessions, temporal=dev_server_env.client)
    async with browser(app) as client:
        yield client


async def test_a_hammered_portal_link_gets_429(
    portal: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
) -> None:
    ref = await make_case(sessions)
    token = token_for(portal_settings, ref)
    csrf = await csrf_of(portal, token)  # 1
    assert (await portal.get(f"/portal/{token}")).status_code == 200  # 2
    assert (await portal.get(f"/portal/{token}")).status_code == 200  # 3
    page = await portal.get(f"/portal/{token}")
    assert page.status_code == 429
    assert 1 <= int(page.headers["Retry-After"]) <= 60
    assert "Please slow down" in page.text
    assert "Nothing was changed" in page.text
    assert page.headers["Cache-Control"] == "no-store"

    # a form post over the limit is refused too, and changes nothing
    posted = await portal.post(
        f"/portal/{token}/preferences", data={"csrf": csrf, "channels": ["sms"], "language": "de"}
    )
    assert posted.status_code == 429
    async with sessions() as s:
        case = await s.scalar(select(Case).where(Case.ref == ref))
    assert case is not None
    assert "contact_preferences" not in case.profile or (
        case.profile["contact_preferences"].get("language") != "de"
    )

    # another client's link is unaffected
    other = token_for(portal_settings, await make_case(sessions))
    assert (await portal.get(f"/portal/{other}")).status_code == 200


async def test_guessing_links_from_one_address_is_throttled(
    sessions: SessionFactory, dev_server_env: Any, tmp_path: Any
) -> None:
    settings = test_settings(data_dir=tmp_path, portal_requests_per_address="5/minute")
    app = app_for(settings, sessions=sessions, temporal=dev_server_env.client)
    async with browser(app) as client:
        for n in range(5):
            assert (await client.get(f"/portal/guess-{n}")).status_code == 404
        assert (await client.get("/portal/guess-6")).status_code == 429
    async with browser(app, "198.51.100.20") as someone_else:
        assert (await someone_else.get("/portal/guess-7")).status_code == 404


def test_the_counter_storage_is_checked_at_start() -> None:
    """A wrong RATE_LIMIT_STORAGE stops the API at start; it never runs unthrottled."""
    from limits.errors import ConfigurationError
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="async storage URI"):
        test_settings(rate_limit_storage="memory://")
    with pytest.raises(ConfigurationError, match="unknown storage scheme"):
        create_app(test_settings(rate_limit_storage="async+bogus://somewhere"))
    assert create_app(test_settings(rate_limit_storage="async+memory://")).state.throttle
