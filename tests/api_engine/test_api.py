"""The case engine's HTTP edge, without a worker: case types, validation, stage access, outages.

Nothing here needs a workflow to run: every answer is decided by the API before (or instead of)
reaching Temporal.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from store.db import SessionFactory
from tests.api_engine.conftest import (
    ADMIN,
    CLIENT,
    MANAGER,
    OPERATOR,
    REVIEWER,
    RM,
    build_app,
    engine_settings,
    insert_case,
)
from tests.conftest import REPO, new_ref
from tests.factories import profile_json


def order(ref: str | None = None, **data: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "case_type": "order_approval",
        "client": profile_json(),
        "data": {"order_id": "SO-1001", "order_value": 1200, "currency": "GBP", **data},
    }
    if ref:
        body["reference"] = ref
    return body


# ------------------------------------------------------------------ case types
async def test_case_types_are_listed_for_any_role(api: httpx.AsyncClient) -> None:
    for headers in (CLIENT, MANAGER, RM, OPERATOR):
        r = await api.get("/case-types", headers=headers)
        assert r.status_code == 200, r.text
        names = {t["name"] for t in r.json()}
        assert {"client_onboarding", "order_approval", "return_request"} <= names
    summary = next(t for t in r.json() if t["name"] == "order_approval")
    assert summary["stages"][:2] == ["intake", "approval"]
    assert summary["fields"]["order_value"]["type"] == "number"
    assert (await api.get("/case-types")).status_code == 401


async def test_one_case_type_in_full_and_404_for_unknown(api: httpx.AsyncClient) -> None:
    r = await api.get("/case-types/order_approval", headers=MANAGER)
    assert r.status_code == 200, r.text
    full = r.json()
    assert full["name"] == "order_approval"
    approval = next(s for s in full["stages"] if s["key"] == "approval")
    kinds = {e["key"]: e["kind"] for e in approval["elements"]}
    assert kinds["group_approval"] == "approval"
    missing = await api.get("/case-types/nope", headers=MANAGER)
    assert missing.status_code == 404
    assert "order_approval" in missing.json()["detail"]
    assert (await api.get("/case-types/Bad-Name", headers=MANAGER)).status_code == 422


# ------------------------------------------------------------------ POST /cases validation
async def test_unknown_case_type_is_422_naming_the_known_ones(api: httpx.AsyncClient) -> None:
    body = {"case_type": "nope", "client": profile_json()}
    r = await api.post("/cases", json=body, headers=MANAGER)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail[0]["loc"] == ["body", "case_type"]
    for name in ("client_onboarding", "order_approval", "return_request"):
        assert name in detail[0]["msg"]


async def test_case_type_name_is_pattern_bounded(api: httpx.AsyncClient) -> None:
    for bad in ("Order", "x" * 61, "a b", "ok\u0000"):
        r = await api.post(
            "/cases", json={"case_type": bad, "client": profile_json()}, headers=MANAGER
        )
        assert r.status_code == 422, bad
        assert ["body", "case_type"] in [e["loc"] for e in r.json()["detail"]]


async def test_bad_case_data_is_422_with_field_errors(api: httpx.AsyncClient) -> None:
    body = order(ref=new_ref("BAD"))
    body["data"] = {"order_value": "lots", "currency": "XYZ", "colour": "red"}
    r = await api.post("/cases", json=body, headers=MANAGER)
    assert r.status_code == 422, r.text
    locs = {tuple(e["loc"]): e["type"] for e in r.json()["detail"]}
    assert locs[("body", "data", "order_value")] == "float_type"
    assert locs[("body", "data", "currency")] == "enum"
    assert locs[("body", "data", "colour")] == "extra_forbidden"
    assert locs[("body", "data", "order_id")] == "missing"
    # nothing was written: the same reference with good data is a new case (201 or 503 below)
    too_many = order()
    too_many["data"] = {f"k{i}": i for i in range(51)}
    r = await api.post("/cases", json=too_many, headers=MANAGER)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][:2] == ["body", "data"]
    nested = order()
    nested["data"]["order_id"] = {"a": 1}
    assert (await api.post("/cases", json=nested, headers=MANAGER)).status_code == 422


# ------------------------------------------------------------------ clean bounded text
@pytest.mark.parametrize(
    "raw_reason",
    [
        json.dumps("stop\u0000here"),  # NUL
        '"\\ud800"',  # a lone surrogate, as raw JSON text
        json.dumps("x" * 1_000_000),  # 1 MB
        json.dumps(""),
    ],
    ids=["nul", "lone-surrogate", "1mb", "empty"],
)
async def test_pause_reason_must_be_clean_bounded_text(
    api: httpx.AsyncClient, sessions: SessionFactory, raw_reason: str
) -> None:
    ref = await insert_case(sessions, stage="intake")
    r = await api.post(
        f"/cases/{ref}/pause",
        content=f'{{"reason": {raw_reason}}}'.encode(),
        headers={**MANAGER, "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text[:300]
    assert r.json()["detail"][0]["loc"] == ["body", "reason"]
    assert len(r.content) < 2000  # the payload is not echoed back


async def test_command_texts_are_bounded_everywhere(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    ref = await insert_case(sessions, stage="approval")
    cases = [
        ("decision", {"decision": "reject", "reason_code": "other", "note": "a\u0000"}, REVIEWER),
        ("decision", {"decision": "reject"}, REVIEWER),  # a rejection needs a reason
        ("decision", {"decision": "maybe"}, REVIEWER),
        ("send-back", {"to_stage": "Intake!", "reason": "x"}, MANAGER),
        ("reopen", {"reason": "y" * 2001}, MANAGER),
        ("messages", {"text": "\ud800"}, CLIENT),
        ("feedback", {"comment": "fine"}, CLIENT),  # needs a score
        ("feedback", {"csat": 9}, CLIENT),
        ("proposal", {"accept": False}, CLIENT),  # a refusal needs a reason
        ("elements/check_stock/skip", {"reason": ""}, MANAGER),
        ("documents/waive", {}, MANAGER),
        ("cancel", {"closure_code": "Bad Code!"}, MANAGER),
    ]
    for path, body, headers in cases:
        r = await api.post(
            f"/cases/{ref}/{path}",
            content=json.dumps(body).encode(),  # ASCII JSON: a lone surrogate travels escaped
            headers={**headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 422, (path, body, r.text)


# ------------------------------------------------------------------ stage access
async def test_stage_access_roles_restrict_staff(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    ref = await insert_case(sessions, stage="approval", access_roles=["compliance_reviewer"])
    denied = await api.get(f"/cases/{ref}", headers=RM)
    assert denied.status_code == 403
    assert denied.json()["detail"] == "stage approval is restricted to: compliance_reviewer"
    ok = await api.get(f"/cases/{ref}", headers=REVIEWER)
    assert ok.status_code == 200, ok.text
    view = ok.json()
    assert (view["stage"], view["case_type"], view["engine"]) == (
        "approval",
        "order_approval",
        "case",
    )
    assert view["case_type_version"] == "test" and view["resolution"] is None
    assert (await api.get(f"/cases/{ref}", headers=ADMIN)).status_code == 200
    assert (await api.get(f"/cases/{ref}", headers=CLIENT)).status_code == 200
    # the live state and every command: refused before Temporal is asked
    assert (await api.get(f"/cases/{ref}/state", headers=RM)).status_code == 403
    # operators oversee every case (read only: no command route takes their role)
    assert (await api.get(f"/cases/{ref}", headers=OPERATOR)).status_code == 200
    assert (await api.get(f"/cases/{ref}/state", headers=OPERATOR)).status_code != 403
    for path, body, headers in [
        ("pause", {"reason": "look"}, MANAGER),
        ("decision", {"decision": "approve"}, MANAGER),
        ("tasks/confirm_availability/complete", {}, RM),
        ("cancel", {"closure_code": "duplicate"}, MANAGER),
        ("checklists/review/items/one/tick", None, RM),
    ]:
        r = await api.post(f"/cases/{ref}/{path}", json=body, headers=headers)
        assert r.status_code == 403, (path, r.text)
        assert "restricted to: compliance_reviewer" in r.json()["detail"]


async def test_unrestricted_stage_and_unknown_case(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    ref = await insert_case(sessions, stage="intake", access_roles=[])
    assert (await api.get(f"/cases/{ref}", headers=RM)).status_code == 200
    assert (await api.get("/cases/NOPE-404", headers=MANAGER)).status_code == 404
    assert (await api.get("/cases/NOPE-404/state", headers=MANAGER)).status_code == 404
    r = await api.post("/cases/NOPE-404/decision", json={"decision": "approve"}, headers=REVIEWER)
    assert r.status_code == 404


async def test_closed_and_frozen_cases_refuse_engine_only_commands(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    closed = await insert_case(sessions, status="closed")
    r = await api.post(f"/cases/{closed}/pause", json={"reason": "x"}, headers=MANAGER)
    assert r.status_code == 409 and "closed" in r.json()["detail"]
    frozen = await insert_case(
        sessions, case_type="client_onboarding", stage="document_collection", engine="onboarding-v1"
    )
    r = await api.post(f"/cases/{frozen}/reopen", json={"reason": "again"}, headers=MANAGER)
    assert r.status_code == 409 and "frozen onboarding workflow" in r.json()["detail"]
    r = await api.post(f"/cases/{frozen}/messages", json={"text": "hello"}, headers=CLIENT)
    assert r.status_code == 409


async def test_roles_per_engine_route(api: httpx.AsyncClient, sessions: SessionFactory) -> None:
    ref = await insert_case(sessions, stage="intake")
    for path, body, headers in [
        ("decision", {"decision": "approve"}, CLIENT),
        ("decision", {"decision": "approve"}, RM),
        ("messages", {"text": "hi"}, MANAGER),
        ("feedback", {"csat": 5}, OPERATOR),
        ("proposal", {"accept": True}, REVIEWER),
        ("reopen", {"reason": "x"}, CLIENT),
        ("elements/x/skip", {"reason": "x"}, REVIEWER),
    ]:
        r = await api.post(f"/cases/{ref}/{path}", json=body, headers=headers)
        assert r.status_code == 403, (path, headers, r.text)


# ------------------------------------------------------------------ listing
async def test_list_filters_by_case_type_and_any_stage(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    ref = await insert_case(sessions, case_type="return_request", stage="inspection")
    r = await api.get(
        "/cases",
        params={"case_type": "return_request", "stage": "inspection", "limit": 200},
        headers=MANAGER,
    )
    assert r.status_code == 200, r.text
    items = {i["reference"]: i for i in r.json()["items"]}
    assert items[ref]["case_type"] == "return_request"
    assert items[ref]["stage"] == "inspection"
    assert all(i["case_type"] == "return_request" for i in items.values())
    r = await api.get("/cases", params={"stage": "Not A Key"}, headers=MANAGER)
    assert r.status_code == 422


# ------------------------------------------------------------------ Temporal away
async def test_temporal_unreachable_is_503_with_retry_after(
    tmp_path: Path, sessions: SessionFactory
) -> None:
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    dead = await Client.connect("127.0.0.1:9", data_converter=pydantic_data_converter, lazy=True)
    app = build_app(engine_settings(tmp_path), sessions, dead)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        ref = new_ref("DOWN")
        r = await http.post("/cases", json=order(ref=ref), headers=MANAGER)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"]
        draft = await http.get(f"/cases/{ref}", headers=MANAGER)
        assert draft.json()["status"] == "draft"  # kept: a retry starts it
        open_ref = await insert_case(sessions, stage="intake")
        for call in (
            http.get(f"/cases/{open_ref}/state", headers=MANAGER),
            http.post(f"/cases/{open_ref}/pause", json={"reason": "x"}, headers=MANAGER),
        ):
            r = await call
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"]


# ------------------------------------------------------------------ no workflow code in the API
def test_importing_the_api_does_not_import_the_onboarding_workflow() -> None:
    code = (
        "import sys, api.app\n"
        "bad = sorted(m for m in sys.modules if m.startswith('workflows.') "
        "and m != 'workflows.search_attributes')\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"api.app imports workflow modules: {out.stdout}"
