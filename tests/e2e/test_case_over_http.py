"""A user's view of the API: a case from POST /cases to resolved, and every way to get it wrong."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from store.models import Account, Case, CaseEvent, DocumentRow, ScreeningRow, StageIntervalRow
from tests.conftest import new_ref
from tests.e2e.conftest import CASE_MANAGER, CLIENT_APP, OPERATOR, LiveStack
from tests.e2e.documents import upload_individual_checklist
from tests.factories import profile_json
from tests.waiting import eventually, until_idle

pytestmark = pytest.mark.e2e


def new_case_body(ref: str | None = None, **client: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"client": profile_json(**client)}
    if ref:
        body["reference"] = ref
    return body


async def poll(http: httpx.AsyncClient, path: str, until, timeout: float = 20) -> dict[str, Any]:
    """GET ``path`` until ``until(json)`` holds: the read model follows the workflow closely."""

    async def read() -> tuple[int, Any]:
        response = await http.get(path, headers=OPERATOR)
        return response.status_code, response.json()

    _, body = await eventually(
        read,
        lambda answer: answer[0] == 200 and until(answer[1]),
        what=f"GET {path} to match",
        timeout=timeout,
    )
    return dict(body)


async def visible_workflows(stack: LiveStack, query: str, expect: int) -> list[Any]:
    """Visibility is eventually consistent: list until the count settles at ``expect``."""

    async def listed() -> list[Any]:
        return [w async for w in stack.temporal.list_workflows(query)]

    return await eventually(
        listed, lambda found: len(found) == expect, what=f"{expect} workflow(s) listed for {query}"
    )


@pytest.fixture
async def http(live_stack: LiveStack):
    async with httpx.AsyncClient(base_url=live_stack.base_url, timeout=30) as client:
        yield client


async def test_case_goes_from_post_to_completed_over_http(http, live_stack, sessions):
    ref = new_ref("E2E")
    created = await http.post("/cases", json=new_case_body(ref), headers=CLIENT_APP)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/cases/{ref}"
    assert created.json()["workflow_id"] == f"onboarding-{ref}"

    case = await poll(  # open at once, then waiting on the client as it asks for documents
        http,
        f"/cases/{ref}",
        lambda c: c["stage"] == "document_collection" and c["status"] == "waiting_on_client",
    )
    await upload_individual_checklist(http, ref)
    # documents read and machine-verified -> screening clear, risk low -> compliance approves
    # and final review signs itself off (straight-through): no person touches the case
    case = await poll(http, f"/cases/{ref}", lambda c: c["status"] == "resolved", timeout=60)
    late = await http.post(
        f"/cases/{ref}/final-review", json={"reviewer": "fred"}, headers=CASE_MANAGER
    )
    assert late.status_code == 409, late.text  # nothing left for a person to sign

    # the engine's lifecycle: resolved (completed) now, closed after the case type's 7 days,
    # reopened meanwhile if the client writes or scores it low
    assert case["resolution"] == "completed"
    assert [s["stage"] for s in case["stages"]] == [
        "acknowledgement",
        "document_collection",
        "compliance_review",
        "account_setup",
        "final_review",
        "welcome",
    ]
    assert case["closed_at"] is None  # not closed until the closing timer
    live = await http.get(f"/cases/{ref}/state", headers=OPERATOR)
    assert live.status_code == 200
    assert live.json()["status"] == "resolved"
    assert live.json()["allowed_actions"] == ["reopen", "client_message", "feedback"]
    assert live.json()["account_number"] is not None
    assert all(s["exited_at"] and s["outcome"] == "completed" for s in case["stages"])

    async with sessions() as s:
        row = await s.get(Case, ref)
        assert row is not None and row.status == "resolved" and row.resolution == "completed"
        assert (
            len(
                (
                    await s.scalars(
                        select(StageIntervalRow).where(StageIntervalRow.case_ref == ref)
                    )
                ).all()
            )
            == 6
        )
        assert await s.scalar(select(Account.status).where(Account.case_ref == ref)) == "open"
        docs = (await s.scalars(select(DocumentRow).where(DocumentRow.case_ref == ref))).all()
        assert sorted((d.kind, d.status) for d in docs) == [
            ("government_id", "accepted"),
            ("proof_of_address", "accepted"),
        ]
        screening = await s.scalar(select(ScreeningRow).where(ScreeningRow.case_ref == ref))
        assert screening is not None and screening.decision == "clear"
        assert screening.list_version.startswith("ofac-sdn@")
        # no person acted on it, and the audit names the rule that signed it off
        audit = (await s.scalars(select(CaseEvent).where(CaseEvent.case_ref == ref))).all()
        people = {e.actor for e in audit} - {"system", "sla", "verification"}
        assert all(actor.startswith("client_app:") for actor in people), people  # the uploads
        (auto,) = [e for e in audit if e.kind == "auto_completed"]
        assert auto.detail["rule"] == "clean_standard_case"
        assert auto.detail["stage"] == "final_review"

    # issue #5: exactly the six milestones, in order, on the client's channels (email, in-app)
    # the welcome message may still be on its way when the case reads "resolved": once the
    # workflow has nothing in flight, every message it queued has been sent
    await until_idle(live_stack.temporal.get_workflow_handle(f"onboarding-{ref}"))
    sent = await http.get(f"/cases/{ref}/notifications", headers=CASE_MANAGER)
    rows = sorted(sent.json()["items"], key=lambda n: n["id"])
    emails = [n["milestone"] for n in rows if n["channel"] == "email"]
    assert emails == [
        "case_created",
        "documents_received",
        "compliance_approved",
        "account_provisioning_started",
        "setup_completed",
        "welcome_package",
    ]
    assert [n["milestone"] for n in rows if n["channel"] == "in_app"] == emails
    assert {n["status"] for n in rows if n["channel"] == "email"} == {"local_outbox"}

    found = await visible_workflows(
        live_stack,
        f"CaseRef='{ref}' AND CaseStatus='resolved' AND CaseStage='welcome'",
        expect=1,
    )
    assert [w.id for w in found] == [f"onboarding-{ref}"]
    listing = await http.get(
        "/cases", params={"status": "resolved", "limit": 200}, headers=OPERATOR
    )
    assert ref in [c["reference"] for c in listing.json()["items"]]


async def test_an_enterprise_case_still_waits_for_people(http, live_stack):
    """Enterprise clients get two compliance reviewers and never the straight-through path."""
    ref = new_ref("E2E")
    body = new_case_body(ref, client_type="enterprise", name="Acme Widgets Ltd")
    created = await http.post("/cases", json=body, headers=CLIENT_APP)
    assert created.status_code == 201, created.text
    case = await poll(http, f"/cases/{ref}", lambda c: c["stage"] == "document_collection")
    waive = await http.post(
        f"/cases/{ref}/documents/waive",
        json={"note": "documents checked by hand"},
        headers=CASE_MANAGER,
    )
    assert waive.status_code == 200, waive.text
    case = await poll(http, f"/cases/{ref}", lambda c: c["stage"] == "compliance_review")
    state = await eventually(
        lambda: http.get(f"/cases/{ref}/state", headers=OPERATOR),
        lambda r: r.status_code == 200 and "decide" in r.json()["allowed_actions"],
        what="the compliance decision to wait for people",
    )
    snapshot = state.json()
    assert snapshot["approvals_required"] == 2 and snapshot["status"] == "open"
    assert case["status"] != "resolved"


async def test_duplicate_post_returns_the_same_case_and_one_workflow(http, live_stack):
    ref = new_ref("DUP")
    body = new_case_body(ref)
    first, second = await asyncio.gather(
        http.post("/cases", json=body, headers=CLIENT_APP),
        http.post("/cases", json=body, headers=CLIENT_APP),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 201]
    assert first.json()["reference"] == second.json()["reference"] == ref
    third = await http.post("/cases", json=body, headers=CLIENT_APP)
    assert third.status_code == 200
    found = await visible_workflows(live_stack, f"CaseRef='{ref}'", expect=1)
    assert len(found) == 1


async def test_idempotency_key_without_reference_returns_the_same_generated_case(http):
    key = "order-" + new_ref()
    body = new_case_body(None, name="Grace Hopper", email="grace@example.com")
    first = await http.post("/cases", json=body, headers={**CLIENT_APP, "Idempotency-Key": key})
    again = await http.post("/cases", json=body, headers={**CLIENT_APP, "Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["reference"] == again.json()["reference"]
    assert first.json()["reference"].startswith("C-")


async def test_same_reference_with_a_different_body_is_a_conflict(http):
    ref = new_ref("CONF")
    first = await http.post("/cases", json=new_case_body(ref), headers=CLIENT_APP)
    assert first.status_code == 201
    other = await http.post(
        "/cases", json=new_case_body(ref, name="Someone Else"), headers=CLIENT_APP
    )
    assert other.status_code == 409
    assert "different request" in other.json()["detail"]
    case = await http.get(f"/cases/{ref}", headers=OPERATOR)
    assert case.json()["client"]["name"] == "Ada Lovelace"


async def test_invalid_body_gets_field_errors_without_echoing_input(http):
    bad = {
        "client": {
            "name": "",
            "email": "not-an-email",
            "client_type": "alien",
            "country": "GBR",
            "phone": "0770 SECRET",
        }
    }
    response = await http.post("/cases", json=bad, headers=CLIENT_APP)
    assert response.status_code == 422
    fields = {tuple(e["loc"][-1:]) for e in response.json()["detail"]}
    assert {("name",), ("email",), ("client_type",), ("country",), ("phone",)} <= fields
    assert "SECRET" not in response.text
    listing = await http.get("/cases", params={"limit": 200}, headers=OPERATOR)
    assert "" not in [c["client_name"] for c in listing.json()["items"]]


async def test_auth_unknown_case_and_wrong_stage(http):
    assert (await http.get("/cases")).status_code == 401
    assert (await http.get("/cases", headers={"X-API-Key": "guess"})).status_code == 401
    assert (
        await http.get("/cases", headers={"Authorization": "Bearer dev-operator-key"})
    ).status_code == 200
    assert (await http.get("/cases/NOPE-404", headers=OPERATOR)).status_code == 404
    assert (
        await http.post(
            "/cases/NOPE-404/final-review", json={"reviewer": "x"}, headers=CASE_MANAGER
        )
    ).status_code == 404

    ref = new_ref("STATE")
    await http.post("/cases", json=new_case_body(ref), headers=CLIENT_APP)
    await poll(http, f"/cases/{ref}", lambda c: c["stage"] == "document_collection")
    forbidden = await http.post(
        f"/cases/{ref}/compliance-decision",
        json={"decision": "approve", "reviewer": "x"},
        headers=CLIENT_APP,
    )
    assert forbidden.status_code == 403
    assert (await http.post("/cases", json=new_case_body(), headers=OPERATOR)).status_code == 403
    early = await http.post(
        f"/cases/{ref}/compliance-decision",
        json={"decision": "approve", "reviewer": "rita"},
        headers=CASE_MANAGER,
    )
    assert early.status_code == 409
    assert "not waiting for an approval" in early.json()["detail"]
    sign_off = await http.post(
        f"/cases/{ref}/final-review", json={"reviewer": "fred"}, headers=CASE_MANAGER
    )
    assert sign_off.status_code == 409
    live = await http.get(f"/cases/{ref}/state", headers=OPERATOR)
    assert live.json()["stage"] == "document_collection"
    assert live.json()["awaiting"] == "client documents"


async def test_probes(http):
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "temporal": "ok"}
