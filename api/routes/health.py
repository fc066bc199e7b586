"""Liveness and readiness probes. Open without an API key (orchestrators probe them); they
reveal nothing about cases."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import text

from api.responses import RETRY_AFTER_HEADER

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="3" fill="#1f4e79"/>'
    '<path d="M4 8.5l2.5 2.5L12 5.5" stroke="#fff" stroke-width="2" fill="none"/></svg>'
)


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    """Browsers ask for it on every page; answer instead of logging 404s."""
    return Response(
        FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


READY_TIMEOUT_SECONDS = 3
RETRY_AFTER_SECONDS = 5


class Readiness(BaseModel):
    """Each dependency's answer (``ok`` or ``unavailable (<error type>)``)."""

    status: Literal["ready", "not_ready"]
    checks: dict[Literal["database", "temporal"], str]
    unavailable: list[Literal["database", "temporal"]] = []


@router.get(
    "/readyz",
    responses={
        200: {"model": Readiness, "description": "Postgres and Temporal both answer"},
        503: {
            "model": Readiness,
            "description": "Postgres or Temporal (named in `unavailable`) does not answer",
            "headers": RETRY_AFTER_HEADER,
        },
    },
)
async def readyz(request: Request) -> JSONResponse:
    """Temporal and Postgres both answer within 3 s; otherwise 503 with ``Retry-After``,
    naming which one failed (``unavailable``) and why (``checks``)."""

    async def database() -> None:
        async with request.app.state.sessions() as session:
            await session.execute(text("SELECT 1"))

    async def temporal() -> None:
        await request.app.state.temporal.service_client.check_health()

    async def check(probe: Callable[[], Awaitable[None]]) -> str:
        try:
            await asyncio.wait_for(probe(), timeout=READY_TIMEOUT_SECONDS)
        except Exception as e:
            return f"unavailable ({type(e).__name__})"
        return "ok"

    # both at once: one slow dependency does not hide (or delay) the other's answer
    names = ("database", "temporal")
    results = await asyncio.gather(check(database), check(temporal))
    checks = dict(zip(names, results, strict=True))
    down = [name for name, result in checks.items() if result != "ok"]
    if not down:
        return JSONResponse({"status": "ready", "checks": checks})
    return JSONResponse(
        status_code=503,
        content={"status": "not_ready", "checks": checks, "unavailable": down},
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
