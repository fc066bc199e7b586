"""Case managers' commands over HTTP: pause/resume, tasks, approvals, send-back, cancel."""

from __future__ import annotations

import pytest

from tests.conftest import new_ref
from tests.e2e.conftest import (
    CASE_MANAGER,
    CLIENT_APP,
    OPERATOR,
    REVIEWER,
    REVIEWER_2,
    actor_of,
)
from tests.e2e.test_case_over_http import http, new_case_body, poll  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e


async def start(http, **client) -> str:  # noqa: F811
    ref = new_ref("GATE")
    created = await http.post("/cases", json=new_case_body(ref, **client), headers=CLIENT_APP)
    assert created.status_code == 201, created.text
    await poll(http, f"/cases/{ref}", lambda c: c["stage"] == "document_collection")
    return ref


async def test_pause_and_resume_over_http_with_409_for_the_wrong_state(http):  # noqa: F811
    ref = await start(http)
    not_paused = await http.post(
        f"/cases/{ref}/resume", json={"actor": "maria"}, headers=CASE_MANAGER
    )
    assert not_paused.status_code == 409
    assert "not paused" in not_paused.json()["detail"]

    paused = await http.post(
        f"/cases/{ref}/pause",
        json={"actor": "maria", "reason": "awaiting legal opinion"},
        headers=CASE_MANAGER,
    )
    assert paused.status_code == 202, paused.text
    case = await poll(http, f"/cases/{ref}", lambda c: c["status"] == "paused")
    assert case["sla_state"] == "paused"
    assert case["ever_paused"] is True
    # who paused is the authenticated caller, not the body's "actor"
    assert case["pauses"][0]["paused_by"] == actor_of(CASE_MANAGER)
    assert case["pauses"][0]["resumed_at"] is None

    again = await http.post(
        f"/cases/{ref}/pause", json={"actor": "bob", "reason": "x"}, headers=CASE_MANAGER
    )
    assert again.status_code == 409
    assert f"paused by {actor_of(CASE_MANAGER)}" in again.json()["detail"]
    no_reason = await http.post(f"/cases/{ref}/pause", json={"actor": "bob"}, headers=CASE_MANAGER)
    assert no_reason.status_code == 422

    live = await http.get(f"/cases/{ref}/state", headers=OPERATOR)
    assert live.json()["awaiting"].startswith(f"resume (paused by {actor_of(CASE_MANAGER)}")

    resumed = await http.post(f"/cases/{ref}/resume", json={"actor": "maria"}, headers=CASE_MANAGER)
    assert resumed.status_code == 202
    case = await poll(http, f"/cases/{ref}", lambda c: c["status"] != "paused")
    assert case["status"] == "waiting_on_client"
    assert case["pauses"][0]["resumed_by"] == actor_of(CASE_MANAGER)
    paused_list = await http.get(
        "/cases", params={"sla_state": "paused", "limit": 200}, headers=OPERATOR
    )
    assert ref not in [c["reference"] for c in paused_list.json()["items"]]


async def test_tasks_dual_approval_send_back_and_cancel_over_http(http):  # noqa: F811
    ref = await start(http, client_type="enterprise", country="US")
    waived = await http.post(
        f"/cases/{ref}/documents-received",
        json={"actor": "cm", "waive_verification": True, "note": "originals seen at branch"},
        headers=CASE_MANAGER,
    )
    assert waived.status_code == 202, waived.text
    await poll(http, f"/cases/{ref}", lambda c: c["stage"] == "compliance_review")

    early = await http.post(
        f"/cases/{ref}/compliance-decision",
        json={"decision": "approve", "reviewer": "rita"},
        headers=CASE_MANAGER,
    )
    assert early.status_code == 409
    # the approval opens only once the enhanced due diligence task before it is done
    assert "not waiting for an approval" in early.json()["detail"]
    live = (await http.get(f"/cases/{ref}/state", headers=OPERATOR)).json()
    open_now = [e["key"] for e in live["elements"] if e["status"] == "active"]
    assert open_now == ["enhanced_due_diligence"], live["elements"]
    unknown = await http.post(
        f"/cases/{ref}/tasks/no_such_task/complete", json={"actor": "sam"}, headers=CASE_MANAGER
    )
    # a task the case type does not have is invalid input (the engine's validator: 422)
    assert unknown.status_code == 422, unknown.text
    later = await http.post(
        f"/cases/{ref}/tasks/assign_account_manager/complete",  # an account_setup task
        json={"actor": "sam"},
        headers=CASE_MANAGER,
    )
    assert later.status_code == 409
    assert "not open in this stage" in later.json()["detail"]
    done = await http.post(
        f"/cases/{ref}/tasks/enhanced_due_diligence/complete",
        json={"actor": "sam", "note": "UBO verified"},
        headers=CASE_MANAGER,
    )
    assert done.status_code == 200, done.text

    first = await http.post(
        f"/cases/{ref}/compliance-decision",
        json={"decision": "approve", "reviewer": "rita"},
        headers=REVIEWER,
    )
    assert first.status_code == 200, first.text
    assert "1 of 2" in first.json()["message"]
    # the second approval must come from another identity: a new "reviewer" name is not one
    twice = await http.post(
        f"/cases/{ref}/compliance-decision",
        json={"decision": "approve", "reviewer": "omar"},
        headers=REVIEWER,
    )
    assert twice.status_code == 409
    second = await http.post(
        f"/cases/{ref}/compliance-decision",
        json={"decision": "approve", "reviewer": "omar"},
        headers=REVIEWER_2,
    )
    assert second.status_code == 200, second.text
    await poll(http, f"/cases/{ref}", lambda c: c["stage"] == "security_review")

    bad_target = await http.post(
        f"/cases/{ref}/send-back",
        json={"to_stage": "final_review", "actor": "x", "reason": "y"},
        headers=CASE_MANAGER,
    )
    assert bad_target.status_code == 409
    back = await http.post(
        f"/cases/{ref}/send-back",
        json={
            "to_stage": "document_collection",
            "actor": "sec",
            "reason": "questionnaire unsigned",
        },
        headers=CASE_MANAGER,
    )
    assert back.status_code == 200, back.text
    case = await poll(http, f"/cases/{ref}", lambda c: c["stage"] == "document_collection")
    assert [s["outcome"] for s in case["stages"]][-2] == "sent_back"

    cancel = await http.post(
        f"/cases/{ref}/cancel",
        json={"closure_code": "client_withdrew", "actor": "maria"},
        headers=CASE_MANAGER,
    )
    assert cancel.status_code == 200
    case = await poll(http, f"/cases/{ref}", lambda c: c["status"] == "cancelled")
    assert case["closure_reason"] == "client_withdrew"
    after = await http.post(
        f"/cases/{ref}/pause", json={"actor": "m", "reason": "r"}, headers=CASE_MANAGER
    )
    assert after.status_code == 409
    bad_code = await http.post(
        f"/cases/{ref}/cancel",
        json={"closure_code": "Bad Code!", "actor": "m"},
        headers=CASE_MANAGER,
    )
    assert bad_code.status_code == 422
