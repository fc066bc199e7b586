"""Metrics a scrape sees: the worker's SDK Prometheus endpoint (its runtime's and our
application counters) and the API's ``/metrics`` (request latency, cases created, the read
model's gauges). A case opened over the API breaches its document_collection SLA on the
time-skipping server; the breach counter for that stage goes up by exactly one."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api.observability import ReadModelGauges
from core.telemetry import temporal_runtime
from store.db import SessionFactory
from tests.api_engine.conftest import CLIENT, build_app, engine_settings
from tests.conftest import new_ref
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import wait_for
from tests.factories import profile_json
from tests.waiting import eventually

STAGE = "document_collection"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def samples(text: str, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called ``name`` whose labels include ``labels``."""
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                found.append((dict(sample.labels), float(sample.value)))
    return found


def total(text: str, name: str, **labels: str) -> float:
    return sum(value for _, value in samples(text, name, **labels))


@pytest.fixture
async def metered_client(time_skipping_env: Any) -> tuple[Client, str]:
    """A client on the time-skipping server whose runtime serves Prometheus metrics: the
    worker built on it records our counters there, as ``onboarding worker`` does."""
    address = f"127.0.0.1:{free_port()}"
    client = await Client.connect(
        time_skipping_env.client.service_client.config.target_host,
        namespace=time_skipping_env.client.namespace,
        data_converter=pydantic_data_converter,
        runtime=temporal_runtime(address),
    )
    return client, f"http://{address}/metrics"


async def test_a_breach_counts_once_for_its_stage_on_both_endpoints(
    time_skipping_env: Any,
    metered_client: tuple[Client, str],
    sessions: SessionFactory,
    tmp_path: Path,
):
    env = time_skipping_env
    client, worker_metrics = metered_client
    async with engine_worker(client, sessions) as worker:
        settings = engine_settings(tmp_path, temporal_task_queue=worker.task_queue)
        app = build_app(settings, sessions, env.client)
        app.state.read_model_gauges = ReadModelGauges(sessions=sessions, ttl=0)  # no cache
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as api:
            before = (await api.get("/metrics")).text
            ref = new_ref("MET")
            created = await api.post(
                "/cases", json={"reference": ref, "client": profile_json()}, headers=CLIENT
            )
            assert created.status_code == 201, created.text
            handle = env.client.get_workflow_handle(f"onboarding-{ref}")
            worker.started_cases.append(handle)
            state = await wait_for(
                handle,
                lambda s: s.stage == STAGE and s.sla is not None and s.sla.due_at is not None,
            )
            assert state.sla is not None and state.sla.due_at is not None
            await env.sleep(state.sla.due_at - await env.get_current_time() + timedelta(minutes=1))
            await wait_for(handle, lambda s: s.sla is not None and s.sla.state == "breached")

            async def scrape() -> str:
                async with httpx.AsyncClient() as http:
                    return (await http.get(worker_metrics)).text

            queue = {"task_queue": worker.task_queue}
            text = await eventually(
                scrape,
                lambda t: total(t, "onboarding_sla_breaches_total", stage=STAGE, **queue) >= 1,
                what=f"the breach of {STAGE} on the worker's endpoint",
            )
            breached = samples(text, "onboarding_sla_breaches_total", stage=STAGE, **queue)
            assert [(labels["case_type"], value) for labels, value in breached] == [
                ("client_onboarding", 1.0)
            ]
            assert total(text, "onboarding_sla_warnings_total", stage=STAGE, **queue) == 1
            assert total(text, "onboarding_stage_entries_total", stage=STAGE, **queue) == 1
            assert (
                total(
                    text,
                    "onboarding_stage_exits_total",
                    stage="acknowledgement",
                    outcome="completed",
                    **queue,
                )
                == 1
            )
            assert total(text, "onboarding_notifications_total", channel="in_app", **queue) >= 1
            assert total(text, "onboarding_notifications_total", outcome="local_outbox", **queue)
            # the SDK's own metrics share the endpoint
            assert any(f.name.startswith("temporal_") for f in text_string_to_metric_families(text))

            after = (await api.get("/metrics")).text
            assert after and (await api.get("/metrics")).headers["content-type"].startswith(
                "text/plain"
            )
            created_by_type = "onboarding_cases_created_total"
            assert (
                total(after, created_by_type, case_type="client_onboarding")
                - total(before, created_by_type, case_type="client_onboarding")
                == 1
            )
            assert (
                total(
                    after,
                    "onboarding_api_request_duration_seconds_count",
                    method="POST",
                    route="/cases",
                    status="201",
                )
                >= 1
            )
            # the read model's view: this case is among the breached ones in its stage
            assert (
                total(
                    after,
                    "onboarding_cases_active",
                    case_type="client_onboarding",
                    stage=STAGE,
                    sla_state="breached",
                )
                >= 1
            )
            assert total(after, "onboarding_read_model_up") == 1
            # routes are templates, never a raw path with a ref in it
            assert ref not in after


async def test_metrics_token_guards_the_endpoint_when_set(sessions: SessionFactory, tmp_path: Path):
    settings = engine_settings(tmp_path, metrics_token="scrape-token-123456")
    app = build_app(settings, sessions, None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        refused = await api.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        wrong = await api.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await api.get("/metrics", headers={"Authorization": "Bearer scrape-token-123456"})
        assert ok.status_code == 200
        assert "onboarding_api_request_duration_seconds" in ok.text
