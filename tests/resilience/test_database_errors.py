"""Postgres going away surfaces in several exception families; each answers 503 with
Retry-After (the API's contract for "retry shortly"), never a 500."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api import errors

CAUSES: dict[str, Exception] = {
    "pool-exhausted": PoolTimeout("QueuePool limit of size 10 overflow 5 reached"),
    "refused": ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),
    "reset": ConnectionResetError(104, "Connection reset by peer"),
    "asyncpg-closed": asyncpg.InterfaceError("connection is closed"),
    "asyncpg-starting": asyncpg.CannotConnectNowError("the database system is starting up"),
    "asyncpg-shutdown": asyncpg.AdminShutdownError(
        "terminating connection due to administrator command"
    ),
    "sqlalchemy-wrapped": OperationalError("SELECT 1", {}, Exception("server closed")),
}


def _app() -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/boom/{name}")
    async def boom(name: str) -> None:
        raise CAUSES[name]

    @app.get("/bug")
    async def bug() -> None:
        raise ZeroDivisionError("a real bug stays a 500")

    return app


@pytest.mark.parametrize("name", sorted(CAUSES))
async def test_database_outage_is_a_503_with_retry_after(name: str) -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        r = await http.get(f"/boom/{name}")
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "5"
    assert r.json() == {"detail": "database unavailable; retry shortly"}
    assert "5432" not in r.text and "QueuePool" not in r.text  # nothing internal leaks


async def test_other_errors_stay_500_with_an_id() -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        r = await http.get("/bug")
    assert r.status_code == 500
    assert r.json()["detail"].startswith("internal error (id ")
