"""Liveness and readiness probes. Open without an API key (orchestrators probe them); they
reveal nothing about cases."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

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


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Temporal and Postgres both answer within 3 s; 503 otherwise, saying which one failed."""
    checks: dict[str, str] = {}

    async def database() -> None:
        async with request.app.state.sessions() as session:
            await session.execute(text("SELECT 1"))

    async def temporal() -> None:
        await request.app.state.temporal.service_client.check_health()

    for name, probe in (("database", database), ("temporal", temporal)):
        try:
            await asyncio.wait_for(probe(), timeout=3)
            checks[name] = "ok"
        except Exception as e:
            checks[name] = f"unavailable ({type(e).__name__})"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        status_code=200 if ready else 503,
        content={"status": "ready" if ready else "not_ready", "checks": checks},
    )
