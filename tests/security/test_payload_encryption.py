"""Client PII never reaches Temporal in plaintext: a whole case runs with the payload codec,
then every event, payload and search attribute of its history is scanned; the codec server
endpoint still shows operators the decoded payloads."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from core.codec import data_converter, new_key_entry
from schemas.engine_commands import CommandResult, Decide, WaiveDocuments
from store.db import SessionFactory
from tests.api_engine.conftest import MANAGER, OPERATOR, RM, build_app, engine_settings
from tests.conftest import running_worker
from tests.documents.samples import pdf, png
from tests.engine.helpers import profile, start, wait_for

PASSPORT_FILE = "Philippa_Quarrington_passport_scan.pdf"
BILL_FILE = "quarrington-utility-bill-march.png"
NAME, EMAIL, PHONE, DOB = (
    "Philippa Quarrington",
    "philippa.q@example.org",
    "+447700900456",
    "1979-03-14",
)


async def test_a_case_history_holds_no_plaintext_pii_and_the_codec_server_decodes_it(
    tmp_path: Path, sessions: SessionFactory, dev_server_env: Any
) -> None:
    keys = new_key_entry("test-2") + "," + new_key_entry("test-1")  # newest first
    plain = dev_server_env.client
    client = await Client.connect(
        plain.service_client.config.target_host,
        namespace=plain.namespace,
        data_converter=data_converter(keys),
    )
    settings = engine_settings(tmp_path).model_copy(update={"payload_keys": _secret(keys)})
    app = build_app(settings, sessions, client)  # the API's own client encrypts too
    who = profile(name=NAME, email=EMAIL, phone=PHONE, date_of_birth=DOB)
    transport = httpx.ASGITransport(app=app)
    async with (
        running_worker(client, sessions, settings) as worker,
        httpx.AsyncClient(transport=transport, base_url="http://t") as http,
    ):
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "client_onboarding",
            client_profile=who,
            started=worker.started_cases,
        )
        await wait_for(handle, lambda s: "waive_documents" in s.allowed_actions)
        # real files, named the way clients name them, through the upload endpoint
        for kind, filename, content, dates in (
            ("government_id", PASSPORT_FILE, pdf("passport"), {"expires_on": "2031-01-31"}),
            ("proof_of_address", BILL_FILE, png(2, 2), {"issued_on": _recent_day()}),
        ):
            uploaded = await http.post(
                f"/cases/{ref}/documents",
                files={"file": (filename, content, "application/octet-stream")},
                data={"kind": kind, **dates},
                headers=MANAGER,
            )
            assert uploaded.status_code == 201, uploaded.text
            assert uploaded.json()["filename"] == filename
        state = await wait_for(
            handle, lambda s: "decide" in s.allowed_actions or _documents_settled(s)
        )
        if "decide" not in state.allowed_actions:  # verification wants a person: waive
            await handle.execute_update(
                "waive_documents",
                WaiveDocuments(actor="cm", note="seen"),
                result_type=CommandResult,
            )
            await wait_for(handle, lambda s: "decide" in s.allowed_actions)
        await handle.execute_update(
            "decide", Decide(actor="fred", decision="approve"), result_type=CommandResult
        )
        state = await wait_for(handle, lambda s: s.status == "resolved")
        assert state.fields["client"]["name"] == NAME  # the workflow itself sees it all

        history = await handle.fetch_history()
        described = await handle.describe()

    text = history.to_json()
    payloads = _payloads(json.loads(text))
    assert len(payloads) > 10  # inputs, activity arguments and results, updates, the result
    decoded_raw = b"".join(base64.b64decode(p.get("data", "")) for p in payloads)
    secrets = (NAME, EMAIL, PHONE, DOB, "Philippa", "Quarrington", PASSPORT_FILE, BILL_FILE)
    for secret in (*secrets, "quarrington"):
        assert secret not in text, secret
        assert secret.encode() not in decoded_raw, secret
    assert all(base64.b64decode(p["metadata"]["encoding"]) == b"binary/encrypted" for p in payloads)
    # the patch markers outside the codec hold nothing but the patch id
    markers = _patch_markers(json.loads(text))
    assert markers and all(set(m) <= {"id", "deprecated"} for m in markers), markers
    attributes = json.dumps({k.name: v for k, v in described.typed_search_attributes})
    for secret in secrets:
        assert secret not in attributes and secret not in handle.id, secret

    # operators read it through the codec server, with a staff key; others cannot
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_app(settings, sessions, plain)),
        base_url="http://t",
    ) as http:
        start_input = {"payloads": _start_payloads(json.loads(text))}
        refused = await http.post("/codec/decode", json=start_input)
        assert refused.status_code == 401
        decoded = await http.post("/codec/decode", json=start_input, headers=OPERATOR)
        assert decoded.status_code == 200, decoded.text
        body = base64.b64decode(decoded.json()["payloads"][0]["data"])
        assert NAME.encode() in body and EMAIL.encode() in body
        not_staff = await http.post("/codec/decode", json=start_input, headers=RM)
        assert not_staff.status_code == 200  # relationship managers are staff too
        everything = await http.post("/codec/decode", json={"payloads": payloads}, headers=OPERATOR)
        assert everything.status_code == 200
        opened = b"".join(base64.b64decode(p["data"]) for p in everything.json()["payloads"])
        assert NAME.encode() in opened


def _recent_day() -> str:
    return (datetime.now(UTC) - timedelta(days=10)).date().isoformat()


def _documents_settled(state: Any) -> bool:
    """Both uploads have been judged (verified or not) by the workflow."""
    return any(e.kind == "documents" and e.uploads_seen >= 2 for e in state.elements)


def _secret(text: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(text)


def _payloads(node: Any) -> list[dict[str, Any]]:
    """Every Payload object in a history's JSON, search attributes aside (they are never
    encrypted: they carry no PII, which the test checks separately), and the SDK's own
    ``workflow.patched`` markers aside (Temporal writes a patch id there, never our data, and
    does not pass it through the codec; ``_patch_markers`` checks what they hold), and a local
    activity marker's own bookkeeping (``data``: sequence, attempt, activity type, times) aside:
    its ``result`` is checked like any payload."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "metadata" in node and "encoding" in node.get("metadata", {}):
            found.append(node)
        for key, value in node.items():
            if key == "markerRecordedEventAttributes" and value.get("markerName") == "core_patch":
                continue
            if key == "markerRecordedEventAttributes" and value.get("markerName") == (
                "core_local_activity"
            ):  # the SDK's bookkeeping (seq, attempt, type, times) is plain; the result is not
                found += _payloads(value.get("details", {}).get("result", {}))
                continue
            if key != "searchAttributes":
                found += _payloads(value)
    elif isinstance(node, list):
        for value in node:
            found += _payloads(value)
    return found


def _patch_markers(history: dict[str, Any]) -> list[Any]:
    """What each ``workflow.patched`` marker holds, decoded."""
    found = []
    for event in history["events"]:
        attrs = event.get("markerRecordedEventAttributes")
        if attrs and attrs.get("markerName") == "core_patch":
            for payload in attrs["details"]["patch-data"]["payloads"]:
                found.append(json.loads(base64.b64decode(payload["data"])))
    return found


def _start_payloads(history: dict[str, Any]) -> list[dict[str, Any]]:
    started = history["events"][0]["workflowExecutionStartedEventAttributes"]
    return list(started["input"]["payloads"])


async def test_the_local_temporal_ui_may_use_the_codec_server_in_development_only(
    tmp_path: Path, sessions: SessionFactory, dev_server_env: Any
) -> None:
    keys = new_key_entry("dev-1")
    settings = engine_settings(tmp_path).model_copy(update={"payload_keys": _secret(keys)})
    ui = str(settings.temporal_ui_url).rstrip("/")
    app = build_app(settings, sessions, dev_server_env.client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        plain = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IkFkYSI="}]}
        sealed = await http.post("/codec/encode", json=plain, headers={"Origin": ui})
        assert sealed.status_code == 200, sealed.text
        assert sealed.headers["access-control-allow-origin"] == ui
        opened = await http.post("/codec/decode", json=sealed.json(), headers={"Origin": ui})
        assert opened.json() == plain  # round trip: '"Ada"' as json/plain
        stranger = await http.post(
            "/codec/decode", json=sealed.json(), headers={"Origin": "https://evil.example"}
        )
        assert stranger.status_code == 401
        preflight = await http.options(
            "/codec/decode",
            headers={"Origin": ui, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 200
