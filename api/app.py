"""FastAPI application: one Temporal client and one DB engine per process, held by the lifespan.

``uvicorn api.app:app`` works; ``onboarding api`` does the same with settings applied.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from api import errors
from api.deps import Throttle, load_case_types
from api.observability import RequestObservability
from api.routes import (
    case_types,
    cases,
    codec,
    console,
    console_inbound,
    console_reports,
    console_whatif,
    contacts,
    dashboard,
    documents,
    health,
    inbound,
    metrics,
    notifications,
    portal,
    provider_events,
    reports,
    work,
)
from core.database import resolve_database_url
from core.logging import redact_settings
from core.settings import Settings, get_settings
from core.temporal import connect_config
from core.tracing import instrument_app, temporal_interceptors
from store.db import make_engine, make_session_factory

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)
WEB_STATIC = Path(__file__).resolve().parent / "web" / "static"

DESCRIPTION = """
Cases of several case types (client onboarding, order approval, return request, …), each a
durable Temporal workflow. `GET /case-types` lists them.

Authenticate with `X-API-Key: <key>` (or `Authorization: Bearer <key>`). Each key maps to one
role: `client_app`, `case_manager` or `operator`.
"""


def create_app(
    settings: Settings | None = None, *, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """The app. Traced when tracing is on (``core/tracing.py``), or with ``tracer_provider``
    (tests), which then also traces the lifespan's Temporal client."""
    settings = settings or get_settings()
    redact_settings(settings)  # these values never appear in a log line

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from temporalio.client import Client

        from core.codec import data_converter

        app.state.case_types = load_case_types(settings)  # a bad case type stops the start
        url, embedded = resolve_database_url(settings)
        engine = make_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pre_ping=settings.db_pool_pre_ping,
        )
        config = connect_config(settings)
        target = config.pop("target_host")
        # lazy: the API starts (and /readyz says why it is not ready) even if Temporal is down
        app.state.temporal = await Client.connect(
            target,
            data_converter=data_converter(
                settings.payload_keys.get_secret_value() if settings.payload_keys else None
            ),
            lazy=True,
            interceptors=temporal_interceptors(tracer_provider),
            **config,
        )
        app.state.settings = settings
        app.state.sessions = make_session_factory(engine)
        app.state.embedded_postgres = embedded
        log.info("api ready temporal=%s namespace=%s", target, config.get("namespace"))
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Onboarding case orchestrator",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret.get_secret_value(),
        session_cookie="onboarding_console",
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        https_only=False,  # behind TLS in production: terminate at the proxy
    )
    app.state.throttle = Throttle(settings)  # per app: a fresh one for every test app
    app.state.metrics_token = settings.metrics_token
    app.add_middleware(  # the Temporal UI calls the codec server from the browser
        CORSMiddleware,
        allow_origins=[codec.ui_origin(settings)],
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
        allow_credentials=True,
    )
    # latency by route, the access line, and each log line's case and trace
    app.add_middleware(RequestObservability)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(case_types.router)
    app.include_router(cases.router)
    app.include_router(documents.router)
    app.include_router(notifications.router)
    app.include_router(portal.router)
    app.include_router(console.router)
    app.include_router(dashboard.router)
    app.include_router(work.router)
    app.include_router(contacts.router)
    app.include_router(inbound.router)
    app.include_router(provider_events.router)
    app.include_router(reports.router)
    app.include_router(console_inbound.router)
    app.include_router(console_reports.router)
    app.include_router(console_whatif.router)
    app.include_router(codec.router)
    app.mount("/static", StaticFiles(directory=WEB_STATIC), name="static")
    instrument_app(app, tracer_provider)
    return app


def __getattr__(name: str) -> FastAPI:
    """``uvicorn api.app:app`` builds the app on first access, not at import time."""
    if name == "app":
        return create_app()
    raise AttributeError(name)
