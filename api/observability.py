"""The API's metrics (Prometheus, ``GET /metrics``) and its per-request log context.

Metrics of this process (``prometheus_client``, a registry of its own):

- ``onboarding_api_request_duration_seconds{method, route, status}``: latency by route
  *template* (``/cases/{ref}``), never the raw path, so refs and tokens never become labels;
- ``onboarding_cases_created_total{case_type}``: cases opened (201, not a repeat);
- the process collector's ``process_*`` (CPU, memory, file descriptors) and Python's GC.

Read-model gauges, read from Postgres when scraped (at most every ``READ_MODEL_TTL_SECONDS``
per process, so scrapes cost one small grouped query):

- ``onboarding_cases_active{case_type, stage, sla_state}``: cases open, waiting on the
  client or paused, where they stand now (``sla_state="breached"`` is what is late now);
- ``onboarding_projection_dead_letters_unresolved``: refused projections nobody resolved;
- ``onboarding_read_model_up``: 1 when that read worked.

Every API replica reports the same read-model values: aggregate them with ``max``, not
``sum``. Event counters (stage entries and exits, SLA warnings and breaches, notifications,
screenings) come from the worker, where they happen (``core/metrics.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from core.logging import current_trace_ids, request_log_context
from store.db import SessionFactory
from store.models import Case, ProjectionDeadLetter

log = logging.getLogger("api.access")

disable_created_metrics()  # no ``*_created`` series: Prometheus has no use for them
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

REQUEST_SECONDS = Histogram(
    "onboarding_api_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
CASES_CREATED = Counter(
    "onboarding_cases_created",
    "Cases opened through the API (a repeat of the same request is not counted)",
    ["case_type"],
    registry=REGISTRY,
)

ACTIVE_STATUSES = ("open", "waiting_on_client", "paused")
READ_MODEL_TTL_SECONDS = 15.0
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics", "/favicon.ico", "/static"})
"""Probes and scrapes: timed, but their access lines are DEBUG."""
UNMATCHED = "unmatched"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def route_template(scope: Scope) -> str:
    """The matched route's template; ``unmatched`` for a 404 (no raw paths as labels)."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    if str(scope.get("path", "")).startswith("/static/"):
        return "/static"
    return UNMATCHED


class RequestObservability:
    """Pure ASGI middleware: the request's log context (its case and trace), its latency in
    ``onboarding_api_request_duration_seconds``, and one JSON access line with the route
    template instead of the path (portal and inbound tokens live in paths)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: an exception escaped
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        ids = current_trace_ids()
        known = {"trace_id": ids[0], "span_id": ids[1]} if ids else {}
        with request_log_context(scope, **known):
            try:
                await self.app(scope, receive, send_status)
            finally:
                elapsed = time.perf_counter() - started
                route = route_template(scope)
                method = str(scope.get("method", ""))
                REQUEST_SECONDS.labels(method, route, str(status)).observe(elapsed)
                log.log(
                    logging.DEBUG if route in QUIET_ROUTES else logging.INFO,
                    "%s %s %s",
                    method,
                    route,
                    status,
                    extra={
                        "http": {
                            "method": method,
                            "route": route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 1),
                        }
                    },
                )


def count_case_created(case_type: str) -> None:
    CASES_CREATED.labels(case_type).inc()


# ====================================================================== read model
@dataclass
class ReadModelGauges:
    """The read-model gauges of one app, cached for ``READ_MODEL_TTL_SECONDS``."""

    sessions: SessionFactory | None = None
    ttl: float = READ_MODEL_TTL_SECONDS
    _at: float = field(default=float("-inf"))
    _families: list[Metric] = field(default_factory=list)

    async def families(self) -> list[Metric]:
        now = time.monotonic()
        if now - self._at >= self.ttl:
            self._families = await self._read()
            self._at = now
        return self._families

    async def _read(self) -> list[Metric]:
        up = GaugeMetricFamily(
            "onboarding_read_model_up", "1 when the read-model gauges could be read"
        )
        if self.sessions is None:
            up.add_metric([], 0)
            return [up]
        active = GaugeMetricFamily(
            "onboarding_cases_active",
            "Cases open, waiting on the client or paused, by current stage and SLA state",
            labels=["case_type", "stage", "sla_state"],
        )
        dead = GaugeMetricFamily(
            "onboarding_projection_dead_letters_unresolved",
            "Read-model projections refused by the database and not resolved yet",
        )
        try:
            async with self.sessions() as session:
                rows = (
                    await session.execute(
                        select(Case.case_type, Case.stage, Case.sla_state, func.count())
                        .where(Case.status.in_(ACTIVE_STATUSES))
                        .group_by(Case.case_type, Case.stage, Case.sla_state)
                    )
                ).all()
                unresolved = await session.scalar(
                    select(func.count())
                    .select_from(ProjectionDeadLetter)
                    .where(ProjectionDeadLetter.resolved_at.is_(None))
                )
        except Exception as e:
            log.warning("metrics: read model unavailable error=%s", type(e).__name__)
            up.add_metric([], 0)
            return [up]
        for case_type, stage, sla_state, n in rows:
            active.add_metric([case_type, stage, sla_state or "none"], n)
        dead.add_metric([], unresolved or 0)
        up.add_metric([], 1)
        return [active, dead, up]


class _Fixed(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


async def exposition(gauges: ReadModelGauges) -> bytes:
    """The text a scrape gets: this process's metrics, then the read-model gauges."""
    extra = CollectorRegistry(auto_describe=False)
    extra.register(_Fixed(await gauges.families()))
    return generate_latest(REGISTRY) + generate_latest(extra)
