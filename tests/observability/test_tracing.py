"""One trace follows a case from POST /cases through the workflow and its activities to the
provider call: the real app in process (FastAPI instrumented), a Temporal client and worker
with the tracing interceptor, the SendGrid stand-in as the provider, and an in-memory span
exporter in place of OTLP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

import core.tracing
from api.app import create_app
from core.tracing import temporal_interceptors, tracing_requested
from store.db import SessionFactory
from tests.api_engine.conftest import CLIENT, engine_settings
from tests.conftest import new_ref, running_worker
from tests.factories import profile_json
from tests.standins.sendgrid_standin import running_sendgrid_standin
from tests.waiting import eventually

SENDGRID_KEY = "SG.tracing-test-key"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test only: core.tracing's provider, exporting into memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(core.tracing, "_provider", provider)
    yield exporter
    exporter.shutdown()


def _named(found: list[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [s for s in found if s.name.startswith(prefix)]


async def test_one_trace_from_post_cases_to_the_provider_call(
    spans: InMemorySpanExporter, tmp_path: Path, sessions: SessionFactory, dev_server_env: Any
):
    traced = Client(**{**dev_server_env.client.config(), "interceptors": temporal_interceptors()})
    with running_sendgrid_standin(api_key=SENDGRID_KEY) as sendgrid:
        base = engine_settings(
            tmp_path, sendgrid_api_key=SENDGRID_KEY, sendgrid_host=sendgrid.base_url
        )
        async with running_worker(traced, sessions, base) as worker:
            settings = base.model_copy(update={"temporal_task_queue": worker.task_queue})
            app = create_app(settings)  # instrumented: core.tracing has a provider
            app.state.settings, app.state.sessions, app.state.temporal = (
                settings,
                sessions,
                traced,
            )
            ref = new_ref("TRC")
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as http:
                created = await http.post(
                    "/cases",
                    json={"reference": ref, "client": profile_json()},
                    headers=CLIENT,
                )
            assert created.status_code == 201, created.text
            handle = traced.get_workflow_handle(f"onboarding-{ref}")
            worker.started_cases.append(handle)

            def finished() -> list[ReadableSpan]:
                return list(spans.get_finished_spans())

            await eventually(
                lambda: _async(finished()),
                lambda found: bool(_named(found, "sendgrid send")),
                what="the welcome e-mail's provider span",
            )

    found = finished()
    (request,) = [s for s in found if s.name == "POST /cases" and s.parent is None]
    trace_id = request.context.trace_id
    in_trace = [s for s in found if s.context.trace_id == trace_id]
    names = {s.name for s in in_trace}
    assert any(n.startswith("StartWorkflow:") for n in names), names
    assert any(n.startswith("RunWorkflow:") for n in names), names
    assert any(n.startswith("RunActivity:") for n in names), names
    assert _named(in_trace, "sendgrid send"), names

    # the provider span sits under its activity, scheduled by the workflow the request
    # started (the interceptor's workflow spans are siblings under StartWorkflow)
    by_id = {s.context.span_id: s for s in in_trace}

    def ancestors(span: ReadableSpan) -> list[str]:
        chain = []
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            chain.append(span.name)
        return chain

    chain = ancestors(_named(in_trace, "sendgrid send")[0])
    assert chain[0].startswith("RunActivity:"), chain
    assert any(n.startswith("StartActivity:") for n in chain), chain
    assert any(n.startswith("StartWorkflow:") for n in chain), chain
    assert chain[-1] == "POST /cases", chain
    # span attributes carry keys and routes, never the client's data
    client = profile_json()
    for span in in_trace:
        text = repr(dict(span.attributes or {}))
        assert client["name"] not in text and client["email"] not in text, span.name


async def _async(value: Any) -> Any:
    return value


def test_tracing_is_off_unless_the_otel_variables_ask_for_it():
    assert not tracing_requested({})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert tracing_requested({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing_requested(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    )
    assert not tracing_requested(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}
    )
    assert core.tracing.setup_tracing("test", env={}) is None  # nothing installed
