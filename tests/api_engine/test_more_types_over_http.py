"""Return requests and a case type added as one YAML file, through HTTP with a real worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from store.db import SessionFactory
from store.models import NotificationRow
from tests.api_engine.conftest import ADMIN, CLIENT, MANAGER, REVIEWER, build_app, engine_settings
from tests.api_engine.test_engine_over_http import (
    OPENED,
    Stack,
    _close_open_cases,
    trail_until_resolved,
    wait_state,
)
from tests.conftest import new_ref, running_worker
from tests.factories import profile_json
from tests.waiting import eventually

FIXTURE_TYPES = Path(__file__).resolve().parents[1] / "fixtures" / "case_types"


@pytest.fixture
async def stack(
    tmp_path: Path, sessions: SessionFactory, dev_server_env: Any
) -> AsyncIterator[Stack]:
    base = engine_settings(tmp_path, case_type_dirs_extra=[FIXTURE_TYPES])
    async with running_worker(dev_server_env.client, sessions, base) as worker:
        settings = base.model_copy(update={"temporal_task_queue": worker.task_queue})
        app = build_app(settings, sessions, dev_server_env.client)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http:
            yield Stack(http, dev_server_env.client, sessions, worker.task_queue)
            await _close_open_cases(http, dev_server_env.client)


async def open_case(http: httpx.AsyncClient, case_type: str, data: dict[str, Any]) -> str:
    ref = new_ref(case_type[:3].upper())
    body = {"reference": ref, "case_type": case_type, "client": profile_json(), "data": data}
    r = await http.post("/cases", json=body, headers=MANAGER)
    assert r.status_code == 201, r.text
    OPENED.append(ref)
    return ref


def active(snapshot: dict[str, Any]) -> list[str]:
    return [e["key"] for e in snapshot["elements"] if e["status"] == "active"]


async def test_return_with_receipt_refund_rejected_once_then_accepted(stack: Stack) -> None:
    http = stack.http
    data = {"order_id": "SO-991", "return_type": "refund", "has_receipt": True, "amount": 249.5}
    ref = await open_case(http, "return_request", data)

    for attempt in range(2):
        snap = await wait_state(http, ref, lambda s: active(s) == ["manager_approval"])
        assert snap["stage"] == "review"
        ok = await http.post(
            f"/cases/{ref}/decision", json={"decision": "approve"}, headers=MANAGER
        )
        assert ok.status_code == 200, ok.text
        await wait_state(http, ref, lambda s: active(s) == ["tell_client_decision"])
        done = await http.post(
            f"/cases/{ref}/tasks/tell_client_decision/complete",
            json={"note": "called the client"},
            headers=MANAGER,
        )
        assert done.status_code == 200, done.text
        snap = await wait_state(http, ref, lambda s: s["proposal"] is not None)
        assert snap["stage"] == "resolution" and snap["status"] == "waiting_on_client"
        assert "refund" in snap["proposal"]
        if attempt == 0:
            no_reason = await http.post(
                f"/cases/{ref}/proposal", json={"accept": False}, headers=CLIENT
            )
            assert no_reason.status_code == 422, no_reason.text
            back = await http.post(
                f"/cases/{ref}/proposal",
                json={"accept": False, "reason": "I paid more than that"},
                headers=CLIENT,
            )
            assert back.status_code == 200, back.text
            assert "back to review" in back.json()["message"]
    accepted = await http.post(f"/cases/{ref}/proposal", json={"accept": True}, headers=CLIENT)
    assert accepted.status_code == 200, accepted.text

    final = await wait_state(http, ref, lambda s: s["status"] == "resolved")
    assert final["resolution"] == "completed"
    assert final["fields"]["refund"]["refund_id"].startswith(f"RF-{ref}")
    assert [v["stage"] for v in final["history"]] == [
        "review",
        "resolution",
        "review",
        "resolution",
    ]
    assert [v["outcome"] for v in final["history"]][:2] == ["completed", "sent_back"]
    trail = await trail_until_resolved(stack.sessions, ref)
    kinds = [e.kind for e in trail]
    assert kinds.count("proposal_rejected") == 1 and kinds.count("proposal_accepted") == 1

    async def emails() -> list[str]:
        async with stack.sessions() as s:
            query = select(NotificationRow.milestone).where(
                NotificationRow.case_ref == ref, NotificationRow.channel == "email"
            )
            return list(await s.scalars(query))

    # messages leave on the case's background lane, not in step with the audit trail
    messages = await eventually(
        emails, lambda sent: sent.count("proposal") >= 2, what="both proposal e-mails"
    )
    assert messages.count("proposal") == 2  # one per proposal made


async def test_a_case_type_added_as_one_yaml_file_runs_through_http(stack: Stack) -> None:
    http = stack.http
    listed = (await http.get("/case-types", headers=ADMIN)).json()
    assert "vendor_due_diligence" in [t["name"] for t in listed]
    bad = await http.post(
        "/cases",
        json={
            "case_type": "vendor_due_diligence",
            "client": profile_json(),
            "data": {"annual_spend": "lots"},
        },
        headers=MANAGER,
    )
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["detail"]} >= {
        ("body", "data", "vendor_name"),
        ("body", "data", "annual_spend"),
    }
    ref = await open_case(
        http, "vendor_due_diligence", {"vendor_name": "Globex", "high_risk": True}
    )

    await wait_state(http, ref, lambda s: active(s) == ["collect_vendor_info"])
    r = await http.post(
        f"/cases/{ref}/tasks/collect_vendor_info/complete", json={}, headers=MANAGER
    )
    assert r.status_code == 200, r.text
    await wait_state(http, ref, lambda s: active(s) == ["enhanced_review"])  # high_risk: true
    r = await http.post(f"/cases/{ref}/tasks/enhanced_review/complete", json={}, headers=REVIEWER)
    assert r.status_code == 200, r.text
    await wait_state(http, ref, lambda s: active(s) == ["dd_checks"])
    for item in ("sanctions_checked", "insurance_certificate"):
        r = await http.post(f"/cases/{ref}/checklists/dd_checks/items/{item}/tick", headers=MANAGER)
        assert r.status_code == 200, r.text
    again = await http.post(
        f"/cases/{ref}/checklists/dd_checks/items/sanctions_checked/tick", headers=MANAGER
    )
    assert again.status_code == 409, again.text
    await wait_state(http, ref, lambda s: active(s) == ["dd_approval"])
    wrong_role = await http.post(
        f"/cases/{ref}/decision", json={"decision": "approve"}, headers=MANAGER
    )
    assert wrong_role.status_code == 403, wrong_role.text  # approver_roles: compliance_reviewer
    r = await http.post(f"/cases/{ref}/decision", json={"decision": "approve"}, headers=REVIEWER)
    assert r.status_code == 200, r.text
    final = await wait_state(http, ref, lambda s: s["status"] == "resolved")
    assert [v["stage"] for v in final["history"]] == ["assessment", "decision"]
