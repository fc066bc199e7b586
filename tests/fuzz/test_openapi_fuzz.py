"""A bounded schemathesis run over the whole OpenAPI schema, with each role's API key.

The app runs in-process (httpx over ASGI) against a real Postgres (a database of its own) and
the real Temporal dev server, with a worker on its own task queue, so workflow-backed commands
really run. One case of each case type (and a document) is opened first, and valid path
parameters take real values half the time (refs, document ids, case type names, element
keys), so requests reach the handlers behind the 404s.

- fuzzing: random valid and invalid requests (hypothesis) to every operation, per role, each
  role with its own seed;
- coverage: schemathesis' deterministic boundary cases for every operation, as admin.

Checks: no 5xx, and every answer is documented: status code, content type, declared headers
and body schema. Deterministic (fixed seeds, derandomized, no example database) and bounded
(MAX_EXAMPLES; about a minute on two cores). A longer run by hand:
``FUZZ_EXAMPLES=200 FUZZ_SEED=7 .venv/bin/pytest tests/fuzz``.

Nothing is excluded: the console and portal HTML pages (and ``/static``) are not in the schema
(``include_in_schema=False``), so schemathesis never sees them; every operation it does see,
the codec server and the multipart upload included, takes input from outside and is fuzzed.
A throwaway database needs CREATEDB on ``TEST_DATABASE_URL`` (the embedded Postgres has it).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import uuid
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.client import Client

from api.app import create_app
from api.deps import load_case_types
from core.settings import Role, Settings
from schemas.casetype import ChecklistElement
from store.db import make_engine, make_session_factory
from store.migrate import upgrade_head
from tests.api_engine.conftest import KEYS, MANAGER, build_app, engine_settings
from tests.conftest import new_ref, running_worker, test_settings
from tests.factories import profile_json

PATH = ParameterLocation.PATH
ROLE_KEYS: dict[Role, str] = {}
for _key, _role in KEYS.items():
    ROLE_KEYS.setdefault(_role, _key)  # one key per role, every role

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))  # per operation and role (fuzzing)
SEED = int(os.environ.get("FUZZ_SEED", "20260501"))
OPENAPI = create_app(test_settings(api_keys=dict(KEYS))).openapi()


def _schema(*, seed: int, phases: dict[str, Any]) -> Any:
    config = {
        "seed": seed,
        "generation": {
            "database": "none",  # nothing written under .hypothesis
            # the key is the role under test, set on every request; a generated one would
            # only test that a wrong key is a 401
            "with-security-parameters": False,
        },
        "phases": phases,
    }
    return schemathesis.openapi.from_dict(OPENAPI, config=schemathesis.Config.from_dict(config))


COVERAGE = _schema(
    seed=SEED,
    phases={
        "fuzzing": {"enabled": False},
        # no probes with methods the schema does not declare: Starlette's router answers
        # those 405 before any code of ours runs
        "coverage": {"unexpected-methods": []},
    },
)
"""Schemathesis' deterministic boundary cases (every missing field, wrong type, too long,
out of range, odd string...), as admin only: admin passes every role check, so each case
reaches validation and the handler; another role's key is refused (403) before either."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

REAL: dict[str, list[Any]] = {}
"""Real values for path parameters, by parameter name (filled by the ``fuzz`` fixture)."""


def use_real_path_values(case: Any) -> None:
    """Half the time (decided by the generated value, so the run stays deterministic), a valid
    path parameter that has real values is swapped for one: the request then reaches the case
    behind it instead of a 404. An invalid one (negative case) is left alone."""
    if not case.path_parameters or (case.meta and case.meta.is_negative_at(PATH)):
        return
    for name, value in case.path_parameters.items():
        pool = REAL.get(name)
        if not pool:
            continue
        digest = zlib.crc32(repr(value).encode())
        if digest % 2 == 0:
            case.path_parameters[name] = pool[(digest // 2) % len(pool)]


@dataclass
class Fuzz:
    loop: asyncio.AbstractEventLoop
    http: httpx.AsyncClient

    def send(self, case: Any, key: str) -> httpx.Response:
        """The case as schemathesis serialises it (for requests), sent over the in-process app.

        The test is synchronous (hypothesis drives it), so it runs the request on the session's
        event loop, which is idle between tests: the app's Postgres pool and Temporal client
        and the worker all live on that loop, and the worker runs while the request waits."""
        kwargs = case.as_transport_kwargs(base_url=str(self.http.base_url))
        kwargs["headers"] = {**kwargs.get("headers", {}), "X-API-Key": key}
        prepared = requests.Request(**kwargs).prepare()
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        assert body is None or isinstance(body, bytes)
        # on the wire as requests would send them: header values in latin-1
        headers = [
            (name.encode(), value if isinstance(value, bytes) else value.encode("latin-1"))
            for name, value in prepared.headers.items()
        ]
        return self.loop.run_until_complete(
            self.http.request(
                prepared.method or "GET", prepared.url or "", headers=headers, content=body
            )
        )


async def _own_database(shared_url: str) -> str:
    """A database of its own on the tests' Postgres: the fuzz run writes odd cases that no
    other test should find in its lists."""
    url = make_url(shared_url)
    name = f"fuzz_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    own = url.set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade_head, own)
    return own


async def _drop_database(own_url: str) -> None:
    url = make_url(own_url)
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    finally:
        await admin.dispose()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def _seed(http: httpx.AsyncClient) -> tuple[list[str], list[str]]:
    """One case of each case type (and a document on the onboarding one): refs, doc ids."""
    bodies: list[dict[str, Any]] = [
        {"case_type": "client_onboarding", "client": profile_json()},
        {
            "case_type": "order_approval",
            "client": profile_json(),
            "data": {"order_id": "SO-1", "order_value": 50_000, "currency": "GBP"},
        },
        {
            "case_type": "return_request",
            "client": profile_json(),
            "data": {"order_id": "SO-2", "return_type": "refund", "has_receipt": False},
        },
        {"case_type": "security_review", "client": profile_json(tier="premium")},
    ]
    refs: list[str] = []
    for body in bodies:
        ref = new_ref("FUZ")
        r = await http.post("/cases", json={"reference": ref, **body}, headers=MANAGER)
        assert r.status_code == 201, r.text
        refs.append(ref)
    upload = await http.post(
        f"/cases/{refs[0]}/documents",
        data={"kind": "government_id"},
        files={"file": ("id.pdf", io.BytesIO(PDF), "application/pdf")},
        headers=MANAGER,
    )
    assert upload.status_code == 201, upload.text
    return refs, [upload.json()["id"]]


def _case_type_keys(settings: Settings) -> dict[str, list[str]]:
    """Case type names, element keys and checklist item keys, for the path parameters that
    take them."""
    registry = load_case_types(settings)
    stages = [stage for name in registry.names() for stage in registry.get(name).stages]
    elements = sorted({element.key for stage in stages for element in stage.elements})
    items = sorted(
        {
            item.key
            for stage in stages
            for element in stage.elements
            if isinstance(element, ChecklistElement)
            for item in element.items
        }
    )
    return {
        "name": registry.names(),
        "task_key": elements,
        "key": elements,
        "element": elements,
        "item": items,
    }


async def _close_everything(temporal: Client, task_queue: str) -> None:
    """Terminate every case the run opened (seeded or fuzzed) on its task queue."""
    query = f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"
    async for wf in temporal.list_workflows(query):
        with contextlib.suppress(Exception):  # closed meanwhile
            await temporal.get_workflow_handle(wf.id, run_id=wf.run_id).terminate("fuzz cleanup")


@pytest.fixture(scope="module")
async def fuzz(
    database_url: str, dev_server_env: Any, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Fuzz]:
    own_url = await _own_database(database_url)
    engine = make_engine(own_url, pool_size=5)
    sessions = make_session_factory(engine)
    root: Path = tmp_path_factory.mktemp("fuzz")
    base = engine_settings(root)
    temporal: Client = dev_server_env.client
    try:
        async with running_worker(temporal, sessions, base) as worker:
            settings_ = base.model_copy(update={"temporal_task_queue": worker.task_queue})
            app = build_app(settings_, sessions, temporal)
            # a crash is the app's 500 answer, reported by not_a_server_error with the request
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://fuzz") as http:
                try:
                    refs, doc_ids = await _seed(http)
                    REAL.update(ref=refs, doc_id=doc_ids, **_case_type_keys(settings_))
                    yield Fuzz(loop=asyncio.get_running_loop(), http=http)
                finally:
                    REAL.clear()
                    await _close_everything(temporal, worker.task_queue)
    finally:
        await engine.dispose()
        await _drop_database(own_url)


HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def _check(fuzz: Fuzz, case: Any, key: str) -> None:
    use_real_path_values(case)
    case.validate_response(fuzz.send(case, key), checks=CHECKS)


def _fuzzed_as(role: Role) -> Any:
    """Random valid and invalid requests (hypothesis) to every operation with ``role``'s key.
    Each role has its own seed, so the roles between them send different requests."""
    schema = _schema(
        seed=SEED + list(ROLE_KEYS).index(role) + 1, phases={"coverage": {"enabled": False}}
    )

    @schema.parametrize()
    @HYPOTHESIS
    def test(case: Any, fuzz: Fuzz) -> None:
        _check(fuzz, case, ROLE_KEYS[role])

    return test


test_fuzzed_as_client_app = _fuzzed_as(Role.CLIENT_APP)
test_fuzzed_as_case_manager = _fuzzed_as(Role.CASE_MANAGER)
test_fuzzed_as_compliance_reviewer = _fuzzed_as(Role.COMPLIANCE_REVIEWER)
test_fuzzed_as_relationship_manager = _fuzzed_as(Role.RELATIONSHIP_MANAGER)
test_fuzzed_as_operator = _fuzzed_as(Role.OPERATOR)
test_fuzzed_as_admin = _fuzzed_as(Role.ADMIN)


def test_every_role_is_fuzzed() -> None:
    assert all(f"test_fuzzed_as_{role.value}" in globals() for role in Role)


@COVERAGE.parametrize()
@HYPOTHESIS
def test_boundary_requests_answer_as_documented(case: Any, fuzz: Fuzz) -> None:
    _check(fuzz, case, ROLE_KEYS[Role.ADMIN])
