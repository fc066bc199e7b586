"""Issue #4 through the API: a listed person's name variant is stopped for review."""

from __future__ import annotations

import pytest

from tests.conftest import new_ref
from tests.e2e.conftest import CASE_MANAGER, CLIENT_APP, OPERATOR, REVIEWER, REVIEWER_2
from tests.e2e.documents import upload_individual_checklist
from tests.e2e.test_case_over_http import http, new_case_body, poll  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e


async def listed_client_case(http) -> str:  # noqa: F811
    ref = new_ref("SCR")
    # "MADURO MOROS, Nicolas" is on the bundled OFAC SDN list; this is a reordered variant
    body = new_case_body(
        ref, name="Nicolás Maduro", email="nm@example.com", country="VE", date_of_birth="1962-11-23"
    )
    assert (await http.post("/cases", json=body, headers=CLIENT_APP)).status_code == 201
    await poll(http, f"/cases/{ref}", lambda c: c["stage"] == "document_collection")
    await upload_individual_checklist(http, ref, date_of_birth="1962-11-23")  # as applied
    await poll(http, f"/cases/{ref}", lambda c: c["stage"] == "compliance_review", timeout=30)
    return ref


async def live(http, ref):  # noqa: F811
    return (await http.get(f"/cases/{ref}/state", headers=OPERATOR)).json()


async def test_potential_match_waits_for_review_then_rejection_closes_the_case(http):  # noqa: F811
    ref = await listed_client_case(http)
    state = await poll(
        http,
        f"/cases/{ref}/state",
        lambda s: (
            "screening" in s["fields"]
            and any(t["key"] == "review_screening_match" for t in s["elements"])
        ),
    )
    review = next(t for t in state["elements"] if t["key"] == "review_screening_match")
    assert review["status"] != "done"
    # the matched list entry is what the reviewer sees beside the task
    assert "MADURO MOROS" in state["fields"]["screening"]["matched_name"]
    assert {"potential_sanctions_match", "high_risk"} <= set(state["flags"])
    assert state["stage"] == "compliance_review"  # not approved straight through

    done = await http.post(
        f"/cases/{ref}/tasks/review_screening_match/complete",
        json={"actor": "rita", "note": "same DOB and nationality"},
        headers=CASE_MANAGER,
    )
    assert done.status_code == 200
    # the engine runs a stage's steps in order: due diligence, then the (dual) approval
    edd = await http.post(
        f"/cases/{ref}/tasks/enhanced_due_diligence/complete",
        json={"note": "match confirmed"},
        headers=CASE_MANAGER,
    )
    assert edd.status_code == 200, edd.text
    state = await poll(http, f"/cases/{ref}/state", lambda s: s["approvals_required"] > 0)
    assert state["approvals_required"] == 2
    rejected = await http.post(
        f"/cases/{ref}/compliance-decision",
        json={"decision": "reject", "reviewer": "rita", "reason": "confirmed OFAC SDN match"},
        headers=CASE_MANAGER,
    )
    assert rejected.status_code == 200, rejected.text
    case = await poll(
        http, f"/cases/{ref}", lambda c: c["status"] == "rejected" or c["resolution"] == "rejected"
    )
    assert case["resolution"] == "rejected"
    closed = await live(http, ref)
    assert closed["resolution"] == "rejected"
    decision = next(e for e in closed["elements"] if e["key"] == "compliance_decision")
    assert decision["status"] == "done" and decision["note"] == "confirmed OFAC SDN match"
    (vote,) = decision["votes"]
    assert (vote["decision"], vote["reason_code"]) == ("reject", "other")


async def test_potential_match_approved_by_two_reviewers_moves_on(http):  # noqa: F811
    ref = await listed_client_case(http)
    await poll(
        http,
        f"/cases/{ref}/state",
        lambda s: (
            "screening" in s["fields"]
            and any(t["key"] == "review_screening_match" for t in s["elements"])
        ),
    )
    for task in ("review_screening_match", "enhanced_due_diligence"):
        response = await http.post(
            f"/cases/{ref}/tasks/{task}/complete",
            json={"actor": "sam", "note": "false positive"},
            headers=CASE_MANAGER,
        )
        assert response.status_code == 200, response.text
    # two approvals from two identities (two reviewer keys)
    for reviewer, headers in (("rita", REVIEWER), ("omar", REVIEWER_2)):
        response = await http.post(
            f"/cases/{ref}/compliance-decision",
            json={"decision": "approve", "reviewer": reviewer},
            headers=headers,
        )
        assert response.status_code == 200, response.text
    await poll(http, f"/cases/{ref}", lambda c: c["stage"] == "final_review", timeout=30)
