"""The two files from the report, end to end through the API and the verify activity: a
screenshot of the sign-in page uploaded as a passport with a future expiry, and an empty
PDF uploaded as a proof of address. Both are taken (no 5xx), neither passes: needs_review,
with the reason on the document."""

from __future__ import annotations

from datetime import date

import httpx
from temporalio.testing import ActivityEnvironment

from activities.documents import DocumentActivities
from api.services.documents import get_blob_store
from core.settings import Settings
from schemas.documents import DocumentKind, DocumentRequirement, VerifyDocumentsInput
from store.db import SessionFactory
from tests.documents import real_documents as docs
from tests.documents.conftest import CLIENT, MANAGER, make_case

CHECKLIST = [
    DocumentRequirement(kind=DocumentKind.GOVERNMENT_ID, title="Photo ID", needs_expiry=True),
    DocumentRequirement(
        kind=DocumentKind.PROOF_OF_ADDRESS, title="Proof of address", max_age_days=90
    ),
]


async def test_a_screenshot_and_an_empty_pdf_are_taken_but_never_pass(
    api: httpx.AsyncClient, sessions: SessionFactory, doc_settings: Settings
):
    ref = await make_case(sessions)
    shot = await api.post(
        f"/cases/{ref}/documents",
        files={"file": ("passport.png", docs.sign_in_screenshot(), "image/png")},
        data={"kind": "government_id", "expires_on": "2035-01-01"},
        headers=CLIENT,
    )
    empty = await api.post(
        f"/cases/{ref}/documents",
        files={"file": ("bill.pdf", docs.empty_pdf(), "application/pdf")},
        data={"kind": "proof_of_address", "issued_on": "2026-11-20"},
        headers=CLIENT,
    )
    assert (shot.status_code, empty.status_code) == (201, 201), (shot.text, empty.text)

    activities = DocumentActivities(sessions, doc_settings, blobs=get_blob_store(doc_settings))
    result = await ActivityEnvironment().run(
        activities.verify_documents,
        VerifyDocumentsInput(case_ref=ref, checklist=CHECKLIST, as_of=date(2026, 11, 22)),
    )
    assert not result.complete and result.accepted == [] and result.needs_review
    assert {(p.kind.value, p.problem, p.verdict) for p in result.problems} == {
        ("government_id", "no_mrz", "needs_review"),
        ("proof_of_address", "unreadable", "needs_review"),
    }

    listing = await api.get(f"/cases/{ref}/documents", headers=MANAGER)
    assert listing.status_code == 200
    by_kind = {d["kind"]: d for d in listing.json()["items"]}
    assert {d["verdict"] for d in by_kind.values()} == {"needs_review"}
    assert {d["status"] for d in by_kind.values()} == {"needs_review"}
    assert "machine-readable lines" in by_kind["government_id"]["status_detail"]
    assert by_kind["proof_of_address"]["verdict_reasons"][0]["code"] == "unreadable"
    assert "no pages" in by_kind["proof_of_address"]["status_detail"]
