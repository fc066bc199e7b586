"""OpenTelemetry tracing, off unless the standard ``OTEL_*`` variables turn it on.

On: ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (or
``OTEL_TRACES_EXPORTER=otlp``), and neither ``OTEL_SDK_DISABLED=true`` nor
``OTEL_TRACES_EXPORTER=none``. The exporter is OTLP over HTTP/protobuf (port 4318), or gRPC
(4317) with ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``; the exporter itself reads the other
``OTEL_EXPORTER_OTLP_*`` variables (headers, certificates, timeout), the SDK reads
``OTEL_TRACES_SAMPLER``/``_ARG``, ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``.

One trace follows a case from ``POST /cases`` (FastAPI) through the Temporal client
(``StartWorkflow``), the workflow (``RunWorkflow``, ``StartActivity``) and each activity
(``RunActivity``) to the provider call (``sendgrid send``, ``twilio send``, httpx), with
SQLAlchemy and asyncpg spans for the database. The Temporal part is
``temporalio.contrib.opentelemetry.TracingInterceptor`` on the client (the worker takes it
from its client); the span context travels in a Temporal header.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from temporalio.client import Interceptor

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
INSTRUMENTED_LIBRARIES = ("httpx", "sqlalchemy", "asyncpg")
TRACER_NAME = "onboarding"

_provider: TracerProvider | None = None


def tracing_requested(env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for traces (see the module docstring)."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return exporter == "otlp" or any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def _otlp_exporter(env: Mapping[str, str]) -> SpanExporter:
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter()


def setup_tracing(
    service_name: str,
    *,
    exporter: SpanExporter | None = None,
    env: Mapping[str, str] | None = None,
) -> TracerProvider | None:
    """Once per process: the global tracer provider exporting over OTLP, and the library
    instrumentations (httpx, SQLAlchemy, asyncpg; ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``
    leaves some out). ``None`` when tracing is off. ``exporter`` replaces OTLP (tests)."""
    global _provider
    if _provider is not None:
        return _provider
    env = os.environ if env is None else env
    if exporter is None and not tracing_requested(env):
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win over our default name
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter or _otlp_exporter(env)))
    trace.set_tracer_provider(provider)
    disabled = {
        name.strip()
        for name in env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")
        if name.strip()
    }
    instrument_libraries(provider, skip=disabled)
    _provider = provider
    return provider


def instrument_libraries(provider: TracerProvider, *, skip: Collection[str] = ()) -> None:
    """httpx clients, SQLAlchemy engines created from now on, and asyncpg connections."""
    if "httpx" not in skip:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    if "sqlalchemy" not in skip:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        # the instrumentation declares sqlalchemy < 2.1; its engine events work on 2.1 too
        SQLAlchemyInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    if "asyncpg" not in skip:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        AsyncPGInstrumentor().instrument(tracer_provider=provider)


def current_provider() -> TracerProvider | None:
    """The provider ``setup_tracing`` installed, if tracing is on."""
    return _provider


def temporal_interceptors(provider: TracerProvider | None = None) -> list[Interceptor]:
    """The Temporal client interceptors: tracing when it is on, else none (each traced call
    adds a small header to the workflow history, so it is not added for nothing)."""
    provider = provider or _provider
    if provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(provider.get_tracer("temporalio"))]


def instrument_app(app: FastAPI, provider: TracerProvider | None = None) -> None:
    """Server spans for every request, named by route template (``POST /cases``)."""
    provider = provider or _provider
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="healthz,readyz,metrics"
    )


@contextmanager
def client_span(name: str, **attributes: Any) -> Iterator[None]:
    """A client span around a call to an outside system (a no-op while tracing is off)."""
    tracer = (_provider or trace.get_tracer_provider()).get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes):
        yield
