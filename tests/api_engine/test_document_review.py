"""A document the machine cannot settle waits for a person: a case manager accepts it or
rejects it with a note the client reads, over HTTP against the real worker and dev server.

The two files from the report (a sign-in screenshot sent as the photo ID, an empty PDF as the
proof of address) both come back ``needs_review``. Rejecting the blank bill asks the client
for another, with the reviewer's words; accepting the ID settles it; a real bill then lets
the case move on to compliance with no waiver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from store.db import SessionFactory
from store.models import CaseEvent
from tests.api_engine.conftest import CLIENT, MANAGER, serving_api
from tests.api_engine.test_engine_over_http import wait_state
from tests.conftest import new_ref
from tests.documents import real_documents as docs
from tests.factories import profile_json
from tests.waiting import eventually

BLANK = "the bill is blank; please send a page that shows your name and address"


@pytest.fixture
async def http(
    tmp_path: Path, sessions: SessionFactory, dev_server_env: Any
) -> AsyncIterator[httpx.AsyncClient]:
    async with serving_api(tmp_path, sessions, dev_server_env.client) as client:
        yield client


async def _upload(http: httpx.AsyncClient, ref: str, name: str, data: bytes, **form: str) -> str:
    content_type = "image/png" if name.endswith(".png") else "application/pdf"
    r = await http.post(
        f"/cases/{ref}/documents",
        files={"file": (name, data, content_type)},
        data=form,
        headers=CLIENT,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _documents(http: httpx.AsyncClient, ref: str) -> dict[str, dict[str, Any]]:
    r = await http.get(f"/cases/{ref}/documents", headers=MANAGER)
    assert r.status_code == 200, r.text
    return {d["id"]: d for d in r.json()["items"]}


async def _audit(sessions: SessionFactory, ref: str) -> list[CaseEvent]:
    async with sessions() as session:
        rows = await session.scalars(
            select(CaseEvent).where(
                CaseEvent.case_ref == ref, CaseEvent.kind == "document_reviewed"
            )
        )
        return list(rows)


async def test_a_person_settles_what_the_machine_could_not(
    http: httpx.AsyncClient, sessions: SessionFactory, dev_server_env: Any
) -> None:
    ref = new_ref("REV")
    body = {"reference": ref, "case_type": "client_onboarding", "client": profile_json()}
    r = await http.post("/cases", json=body, headers=MANAGER)
    assert r.status_code == 201, r.text
    workflow_id = r.json()["workflow_id"]
    try:
        await wait_state(http, ref, lambda s: "waive_documents" in s["allowed_actions"])
        shot = await _upload(
            http, ref, "passport.png", docs.sign_in_screenshot(), kind="government_id"
        )
        blank = await _upload(http, ref, "bill.pdf", docs.empty_pdf(), kind="proof_of_address")
        listed = await eventually(
            lambda: _documents(http, ref),
            lambda docs: {docs[shot]["status"], docs[blank]["status"]} == {"needs_review"},
            what="both files read and sent to review",
        )
        assert "no pages" in listed[blank]["status_detail"]
        await wait_state(http, ref, lambda s: "review_document" in s["allowed_actions"])

        # refusals: a rejection with no note, a document nobody asked about, the client
        no_note = await http.post(
            f"/cases/{ref}/documents/{blank}/review", json={"decision": "reject"}, headers=MANAGER
        )
        assert no_note.status_code == 422, no_note.text
        assert "needs a note" in no_note.text
        unknown = await http.post(
            f"/cases/{ref}/documents/doc_{'0' * 26}/review",
            json={"decision": "accept"},
            headers=MANAGER,
        )
        assert unknown.status_code == 409, unknown.text
        assert "not waiting for review" in unknown.json()["detail"]
        by_client = await http.post(
            f"/cases/{ref}/documents/{shot}/review", json={"decision": "accept"}, headers=CLIENT
        )
        assert by_client.status_code == 403, by_client.text

        rejected = await http.post(
            f"/cases/{ref}/documents/{blank}/review",
            json={"decision": "reject", "note": BLANK},
            headers=MANAGER,
        )
        assert rejected.status_code == 200, rejected.text
        accepted = await http.post(
            f"/cases/{ref}/documents/{shot}/review",
            json={"decision": "accept", "note": "photo ID checked on a video call"},
            headers=MANAGER,
        )
        assert accepted.status_code == 200, accepted.text

        await wait_state(http, ref, lambda s: "review_document" not in s["allowed_actions"])
        listed = await _documents(http, ref)
        assert listed[blank]["status"] == "rejected"
        assert listed[blank]["status_detail"] == BLANK  # the client reads the reviewer's words
        assert listed[shot]["status"] == "accepted"
        assert listed[shot]["status_detail"].startswith("accepted on review by ")
        state = await wait_state(http, ref, lambda s: s["stage"] == "document_collection")
        assert "waive_documents" in state["allowed_actions"]  # still waiting for a new bill

        # a second review of a settled document is a wrong-state command
        again = await http.post(
            f"/cases/{ref}/documents/{shot}/review", json={"decision": "accept"}, headers=MANAGER
        )
        assert again.status_code == 409, again.text

        await _upload(http, ref, "bill-2.pdf", docs.bill_pdf(), kind="proof_of_address")
        await wait_state(http, ref, lambda s: s["stage"] != "document_collection", timeout=60)
        audit = await eventually(
            lambda: _audit(sessions, ref), lambda rows: len(rows) == 2, what="the review audit"
        )
        assert {(r.detail["document_id"], r.detail["decision"]) for r in audit} == {
            (blank, "rejected"),
            (shot, "accepted"),
        }
        (actor,) = {r.actor for r in audit}  # the signed-in case manager, not a typed name
        assert actor.startswith("case_manager:")
    finally:
        await dev_server_env.client.get_workflow_handle(workflow_id).terminate("test cleanup")
