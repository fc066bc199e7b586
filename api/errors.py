"""Error responses: clear, never echoing payloads or secrets, never a bare 500 for known causes."""

from __future__ import annotations

import logging
import uuid

import asyncpg
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from temporalio.service import RPCError

log = logging.getLogger(__name__)

DATABASE_DOWN: tuple[type[Exception], ...] = (
    PoolTimeout,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # admin_shutdown, cannot_connect_now, crash_shutdown
    asyncpg.InterfaceError,
    ConnectionError,
)
"""Exceptions that mean "Postgres cannot be reached now": 503 with Retry-After, not 500."""


def _field_errors(exc: RequestValidationError) -> list[dict[str, object]]:
    """FastAPI's error list minus ``input``/``ctx``/``url`` (they would echo the payload)."""
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": _field_errors(exc)}
    )


async def temporal_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("temporal_error path=%s error=%s", request.url.path, exc)
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": "workflow service unavailable; nothing was changed, retry shortly"},
        headers={"Retry-After": "5"},
    )


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database_error path=%s error=%s", request.url.path, type(exc).__name__)
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": "database unavailable; retry shortly"},
        headers={"Retry-After": "5"},
    )


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    error_id = uuid.uuid4().hex[:12]
    log.exception("unhandled_error id=%s path=%s", error_id, request.url.path, exc_info=exc)
    return JSONResponse(
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        content={"detail": f"internal error (id {error_id}); it has been logged"},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(RPCError, temporal_unavailable)
    app.add_exception_handler(OperationalError, database_unavailable)
    app.add_exception_handler(DBAPIError, database_unavailable)
    # Not wrapped by SQLAlchemy: the pool's wait for a connection, asyncpg's own connection
    # errors, and a refused or reset socket while Postgres restarts.
    for cause in DATABASE_DOWN:
        app.add_exception_handler(cause, database_unavailable)
    app.add_exception_handler(Exception, unexpected)
