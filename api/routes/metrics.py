"""``GET /metrics``: Prometheus text exposition (``api/observability.py`` lists the metrics).

Open like the health probes unless ``METRICS_TOKEN`` is set; then it needs
``Authorization: Bearer <token>``. It carries counts and latencies, never a case's data.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.observability import ReadModelGauges, exposition
from api.responses import ErrorMessage

router = APIRouter(tags=["observability"])


def _gauges(request: Request) -> ReadModelGauges:
    """One cache per app and session factory (tests hand an app its state after start)."""
    state = request.app.state
    sessions = getattr(state, "sessions", None)
    gauges: ReadModelGauges | None = getattr(state, "read_model_gauges", None)
    if gauges is None or gauges.sessions is not sessions:
        gauges = ReadModelGauges(sessions=sessions)
        state.read_model_gauges = gauges
    return gauges


def _authorised(request: Request) -> bool:
    token = getattr(request.app.state, "metrics_token", None)  # create_app sets it
    if token is None:
        return True
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.get_secret_value().encode()
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        401: {
            "model": ErrorMessage,
            "description": "METRICS_TOKEN is set and the request does not carry it",
            "headers": {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
        },
    },
)
async def metrics(request: Request) -> Response:
    """Request latency by route, cases created by type, cases active by stage and SLA state,
    unresolved dead letters, and process metrics."""
    if not _authorised(request):
        return JSONResponse(
            status_code=401,
            content={"detail": "metrics need the bearer token (METRICS_TOKEN)"},
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Response(await exposition(_gauges(request)), media_type=CONTENT_TYPE_LATEST)
