"""Bad input at the edge: every malformed field is a 422 naming it (or a 404 for a well-formed
id nobody has), never a 500 or 503, and nothing is written to Postgres.

A paused engine case refuses a document waiver with 409 (the update validator's answer).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from store.db import SessionFactory
from store.models import CallbackTaskRow, Case, DocumentRow
from tests.api_engine.conftest import (
    CLIENT,
    MANAGER,
    insert_case,
    serving_api,
)
from tests.api_engine.test_engine_over_http import wait_state
from tests.conftest import new_ref
from tests.factories import profile_json

MB = "x" * 1_000_000
LONG = "x" * 10_000  # for a query string (httpx caps a URL at 64 kB)
NEXT_YEAR = (date.today() + timedelta(days=366)).isoformat()


def _order(ref: str) -> dict[str, Any]:
    return {
        "reference": ref,
        "case_type": "order_approval",
        "client": profile_json(),
        "data": {"order_id": "SO-1001", "order_value": 1200, "currency": "GBP"},
    }


def _client(field: str, value: Any) -> Any:
    def change(body: dict[str, Any]) -> None:
        body["client"][field] = value

    return change


def _data(field: str, value: Any) -> Any:
    def change(body: dict[str, Any]) -> None:
        body["data"][field] = value

    return change


SURROGATE = "\ud800"  # sent as the escape \ud800 (ASCII JSON), which decodes to a lone surrogate


# (id, how to spoil a good body, where the error must point)
BAD_CASE_BODIES = [
    ("nul-in-name", _client("name", "Ada\u0000Lovelace"), ["body", "client", "name"]),
    ("surrogate-in-name", _client("name", "Ada " + SURROGATE), ["body", "client", "name"]),
    ("1mb-name", _client("name", MB), ["body", "client", "name"]),
    ("dob-month-13", _client("date_of_birth", "2020-13-45"), ["body", "client", "date_of_birth"]),
    ("dob-feb-30", _client("date_of_birth", "2023-02-30"), ["body", "client", "date_of_birth"]),
    ("unknown-zone", _client("time_zone", "Mars/Olympus"), ["body", "client", "time_zone"]),
    ("path-zone", _client("time_zone", "../../etc/passwd"), ["body", "client", "time_zone"]),
    ("dob-future", _client("date_of_birth", NEXT_YEAR), ["body", "client", "date_of_birth"]),
    (
        "dob-before-1900",
        _client("date_of_birth", "1899-12-31"),
        ["body", "client", "date_of_birth"],
    ),
    ("dob-not-a-string", _client("date_of_birth", 19850412), ["body", "client", "date_of_birth"]),
    ("1mb-phone", _client("phone", "+4" + "4" * 1_000_000), ["body", "client", "phone"]),
    (
        "many-channels",
        _client("contact_preferences", {"channels": ["email"] * 1000}),
        ["body", "client", "contact_preferences", "channels"],
    ),
    (
        "1mb-requirement",
        _client("regulatory_requirements", [MB]),
        ["body", "client", "regulatory_requirements", 0],
    ),
    ("value-lots", _data("order_value", "lots"), ["body", "data", "order_value"]),
    ("value-list", _data("order_value", [1, 2]), ["body", "data", "order_value"]),
    ("1mb-order-id", _data("order_id", MB), ["body", "data", "order_id"]),
    ("nul-order-id", _data("order_id", "SO\u00001"), ["body", "data", "order_id"]),
    ("tier-number", _client("tier", 7), ["body", "client", "tier"]),
    # identifiers are checked by their own rules (python-stdnum, schwifty, phonenumbers)
    ("phone-too-short", _client("phone", "+44 7700 9001"), ["body", "client", "phone"]),
    ("phone-letters", _client("phone", "0770 SECRET"), ["body", "client", "phone"]),
    ("email-no-domain", _client("email", "ada@"), ["body", "client", "email"]),
    ("lei-checksum", _client("lei", "5493001KJTIIGC8Y1R13"), ["body", "client", "lei"]),
    ("vat-checksum", _client("vat_number", "GB980780685"), ["body", "client", "vat_number"]),
    (
        "company-number",
        _client("company_number", "12-ABC-34"),
        ["body", "client", "company_number"],
    ),
    (
        "iban-checksum",
        _client("payout_iban", "GB33BUKB20201555555556"),
        ["body", "client", "payout_iban"],
    ),
    ("nationality-word", _client("nationality", "British"), ["body", "client", "nationality"]),
]


async def _rows(sessions: SessionFactory, model: Any, *where: Any) -> int:
    async with sessions() as s:
        return int((await s.scalar(select(func.count()).select_from(model).where(*where))) or 0)


def _assert_422_at(r: httpx.Response, loc: list[Any]) -> None:
    assert r.status_code == 422, r.text[:500]
    locs = [e["loc"] for e in r.json()["detail"]]
    assert any(got[: len(loc)] == loc for got in locs), locs
    assert len(r.content) < 5000  # the payload is not echoed back


@pytest.mark.parametrize(
    ("spoil", "loc"), [b[1:] for b in BAD_CASE_BODIES], ids=[b[0] for b in BAD_CASE_BODIES]
)
async def test_bad_case_body_is_422_at_the_field_and_writes_nothing(
    api: httpx.AsyncClient, sessions: SessionFactory, spoil: Any, loc: list[Any]
) -> None:
    ref = new_ref("BAD")
    body = _order(ref)
    spoil(body)
    r = await api.post(
        "/cases",
        content=json.dumps(body).encode(),  # ASCII JSON: a lone surrogate travels escaped
        headers={**MANAGER, "Content-Type": "application/json"},
    )
    _assert_422_at(r, loc)
    assert await _rows(sessions, Case, Case.ref == ref) == 0


async def test_a_good_date_of_birth_is_kept_as_a_string(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    """The control: a real past date passes the edge (the answer may be 201, or 503 when the
    case type's worker is not running; either way not 422)."""
    body = _order(new_ref("DOB"))
    body["client"]["date_of_birth"] = "1985-04-12"
    r = await api.post("/cases", json=body, headers=MANAGER)
    assert r.status_code != 422, r.text


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"offset": 10**20}, ["query", "offset"]),
        ({"offset": 100_001}, ["query", "offset"]),
        ({"offset": -1}, ["query", "offset"]),
        ({"limit": 10**6}, ["query", "limit"]),
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": "many"}, ["query", "limit"]),
    ],
    ids=["offset-1e20", "offset-too-deep", "offset-negative", "limit-1e6", "limit-0", "limit-word"],
)
async def test_pagination_is_bounded(
    api: httpx.AsyncClient, params: dict[str, Any], loc: list[Any]
) -> None:
    _assert_422_at(await api.get("/cases", params=params, headers=MANAGER), loc)


async def test_deepest_allowed_page_is_an_empty_page(api: httpx.AsyncClient) -> None:
    r = await api.get("/cases", params={"offset": 100_000, "limit": 200}, headers=MANAGER)
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []


@pytest.mark.parametrize(
    ("path", "loc"),
    [
        ("callbacks/{big}/done", ["path", "callback_id"]),
        ("callbacks/{huge}/done", ["path", "callback_id"]),
        ("callbacks/0/done", ["path", "callback_id"]),
        ("callbacks/abc/done", ["path", "callback_id"]),
        ("inbox/{big}/read", ["path", "notification_id"]),
        ("inbox/{huge}/read", ["path", "notification_id"]),
        ("inbox/-1/read", ["path", "notification_id"]),
    ],
)
async def test_row_ids_are_bounded(
    api: httpx.AsyncClient, sessions: SessionFactory, path: str, loc: list[Any]
) -> None:
    ref = await insert_case(sessions, stage="intake")
    url = f"/cases/{ref}/" + path.format(big=2**63, huge=10**30)
    headers = MANAGER
    body = {"actor": "ann"} if "callbacks" in path else None
    _assert_422_at(await api.post(url, json=body, headers=headers), loc)


async def test_well_formed_unknown_ids_are_404(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    ref = await insert_case(sessions, stage="intake")
    top = 2**63 - 1
    r = await api.post(f"/cases/{ref}/callbacks/{top}/done", json={"actor": "ann"}, headers=MANAGER)
    assert r.status_code == 404, r.text
    r = await api.post(f"/cases/{ref}/inbox/{top}/read", headers=CLIENT)
    assert r.status_code == 404, r.text
    assert await _rows(sessions, CallbackTaskRow, CallbackTaskRow.case_ref == ref) == 0


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"actor": "ann\u0000"}, ["body", "actor"]),
        ({"actor": SURROGATE}, ["body", "actor"]),
        ({"actor": MB}, ["body", "actor"]),
        ({"actor": 5}, ["body", "actor"]),
        ({}, ["body", "actor"]),
    ],
    ids=["nul", "surrogate", "1mb", "number", "missing"],
)
async def test_callback_done_actor_is_clean_bounded_text(
    api: httpx.AsyncClient, sessions: SessionFactory, body: dict[str, Any], loc: list[Any]
) -> None:
    ref = await insert_case(sessions, stage="intake")
    r = await api.post(
        f"/cases/{ref}/callbacks/1/done",
        content=json.dumps(body).encode(),
        headers={**MANAGER, "Content-Type": "application/json"},
    )
    _assert_422_at(r, loc)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"channels": ["email"] * 1000}, ["body", "channels"]),
        ({"channels": []}, ["body", "channels"]),
        ({"channels": ["pigeon"]}, ["body", "channels", 0]),
        ({"language": "en\u0000"}, ["body", "language"]),
        ({"language": MB}, ["body", "language"]),
        ({"callback_stages": ["intake"] * 21}, ["body", "callback_stages"]),
        ({"callback_stages": [MB]}, ["body", "callback_stages", 0]),
        ({"callback_stages": "intake"}, ["body", "callback_stages"]),
    ],
    ids=["1000-channels", "no-channels", "unknown-channel", "nul", "1mb", "21", "1mb-stage", "str"],
)
async def test_preferences_are_bounded(
    api: httpx.AsyncClient, sessions: SessionFactory, body: dict[str, Any], loc: list[Any]
) -> None:
    ref = await insert_case(sessions, stage="intake")
    r = await api.put(f"/cases/{ref}/preferences", json=body, headers=MANAGER)
    _assert_422_at(r, loc)


@pytest.mark.parametrize(
    ("form", "loc"),
    [
        ({"kind": "passport_of_mars"}, ["body", "kind"]),
        ({"kind": MB}, ["body", "kind"]),
        ({"issued_on": "2023-02-30"}, ["body", "issued_on"]),
        ({"issued_on": "2020-13-45"}, ["body", "issued_on"]),
        ({"expires_on": MB}, ["body", "expires_on"]),
        ({"uploaded_by": "ann\u0000"}, ["body", "uploaded_by"]),
        ({"uploaded_by": "ann\u001b[31m"}, ["body", "uploaded_by"]),
        ({"uploaded_by": "y" * 121}, ["body", "uploaded_by"]),
    ],
    ids=["kind", "1mb-kind", "feb-30", "month-13", "1mb-expiry", "nul-by", "escape-by", "long-by"],
)
async def test_document_form_fields_are_bounded(
    api: httpx.AsyncClient, sessions: SessionFactory, form: dict[str, str], loc: list[Any]
) -> None:
    ref = await insert_case(sessions, stage="intake")
    fields = {"kind": "government_id", **form}
    r = await api.post(
        f"/cases/{ref}/documents",
        data=fields,
        files={"file": ("id.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")},
        headers=MANAGER,
    )
    _assert_422_at(r, loc)
    assert await _rows(sessions, DocumentRow, DocumentRow.case_ref == ref) == 0


# ------------------------------------------------------------------ wrong state: 409
@pytest.fixture
async def worker_api(
    tmp_path: Path, sessions: SessionFactory, dev_server_env: Any
) -> AsyncIterator[httpx.AsyncClient]:
    async with serving_api(tmp_path, sessions, dev_server_env.client) as http:
        yield http


async def test_a_paused_case_refuses_a_waiver_and_an_acknowledgement(
    worker_api: httpx.AsyncClient, dev_server_env: Any
) -> None:
    http = worker_api
    ref = new_ref("PAU")
    body = {"reference": ref, "case_type": "client_onboarding", "client": profile_json()}
    r = await http.post("/cases", json=body, headers=MANAGER)
    assert r.status_code == 201, r.text
    workflow_id = r.json()["workflow_id"]
    assert r.json()["engine"] == "case"
    try:
        await wait_state(http, ref, lambda s: "waive_documents" in s["allowed_actions"])
        paused = await http.post(f"/cases/{ref}/pause", json={"reason": "call"}, headers=MANAGER)
        assert paused.status_code == 202, paused.text
        await wait_state(http, ref, lambda s: s["status"] == "paused")
        waived = await http.post(
            f"/cases/{ref}/documents/waive", json={"note": "originals seen"}, headers=MANAGER
        )
        assert waived.status_code == 409, waived.text
        assert "paused" in waived.json()["detail"]
        acked = await http.post(f"/cases/{ref}/escalation/acknowledge", json={}, headers=MANAGER)
        assert acked.status_code == 409, acked.text
        assert "paused" in acked.json()["detail"]
        resumed = await http.post(f"/cases/{ref}/resume", json={}, headers=MANAGER)
        assert resumed.status_code == 202, resumed.text
        await wait_state(http, ref, lambda s: s["status"] != "paused")
        nothing = await http.post(
            f"/cases/{ref}/escalation/acknowledge", json={"note": "x"}, headers=MANAGER
        )
        assert nothing.status_code == 409, nothing.text
        assert "no escalation to acknowledge" in nothing.json()["detail"]
        client = await http.post(f"/cases/{ref}/escalation/acknowledge", json={}, headers=CLIENT)
        assert client.status_code == 403, client.text
    finally:
        await dev_server_env.client.get_workflow_handle(workflow_id).terminate("test cleanup")


# ------------------------------------------------------------------ dashboard filters
@pytest.mark.parametrize(
    ("path", "params", "loc"),
    [
        ("/dashboard", {"from": LONG}, ["query", "from"]),
        ("/dashboard", {"from": "2023-02-30"}, ["query", "from"]),
        ("/dashboard", {"to": "99999-01-01"}, ["query", "to"]),
        ("/dashboard", {"case_type": LONG}, ["query", "case_type"]),
        ("/dashboard", {"tier": "gold\u0000"}, ["query", "tier"]),
        ("/console/dashboard", {"tier": LONG}, ["query", "tier"]),
        ("/console/dashboard", {"client_type": LONG}, ["query", "client_type"]),
        ("/console/dashboard", {"case_type": LONG}, ["query", "case_type"]),
    ],
    ids=[
        "1mb-from",
        "feb-30",
        "year-99999",
        "1mb-type",
        "nul-tier",
        "html-tier",
        "html-ct",
        "html-t",
    ],
)
async def test_dashboard_filters_are_bounded(
    api: httpx.AsyncClient, path: str, params: dict[str, str], loc: list[Any]
) -> None:
    _assert_422_at(await api.get(path, params=params, headers=MANAGER), loc)


async def test_dashboard_page_does_not_echo_an_unknown_tier(api: httpx.AsyncClient) -> None:
    r = await api.get("/console/dashboard", params={"tier": "<b>gold</b>"}, headers=MANAGER)
    assert r.status_code == 422, r.text
    assert "<b>" not in r.text and "standard" in r.json()["detail"]
