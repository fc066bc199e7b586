"""The portal asks only for what is still needed: documents accepted, waived or past their
stage ask for nothing (and offer no upload form); a rejected document shows its reason and
asks for a new one; one a person is checking shows its reason without asking."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import update

from api.services.documents import new_document_id
from core.settings import Settings
from schemas.enums import Stage
from store.db import SessionFactory
from store.models import Case, DocumentRow
from tests.conftest import RunningWorker
from tests.factories import close_case, start_case, wait_for_state, waived_documents
from tests.portal.conftest import make_case, token_for, wait_for_case_row
from workflows.onboarding import OnboardingCaseWorkflow as Wf

NOTHING = "Nothing needed from you right now."
UPLOAD_FORM = 'enctype="multipart/form-data"'


async def add_row(sessions: SessionFactory, ref: str, kind: str, status: str, detail: str) -> None:
    async with sessions() as s:
        s.add(
            DocumentRow(
                id=new_document_id(),
                case_ref=ref,
                kind=kind,
                filename=f"{kind}.pdf",
                content_type="application/pdf",
                size=10,
                sha256=new_document_id().ljust(64, "0")[:64],
                storage_key="unused",
                uploaded_by="client",
                uploaded_at=datetime.now(UTC),
                status=status,
                status_detail=detail,
                verdict={"accepted": "machine_verified"}.get(status, status),
            )
        )
        await s.commit()


async def test_a_waived_case_past_documents_asks_for_nothing(
    api: httpx.AsyncClient,
    portal_settings: Settings,
    sessions: SessionFactory,
    dev_server_env: Any,
    worker: RunningWorker,
) -> None:
    """The reported case: verification waived, the case at "Final check", and the portal
    still listed the ID and the proof of address as not received, with the upload form."""
    ref, handle = await start_case(dev_server_env, worker)
    try:
        await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
        await handle.signal(Wf.documents_received, waived_documents())
        await wait_for_state(handle, lambda s: s.stage == Stage.FINAL_REVIEW)
        await wait_for_case_row(sessions, ref, stage="final_review")
        page = (await api.get(f"/portal/{token_for(portal_settings, ref)}")).text
        assert "Final check" in page
        assert NOTHING in page
        assert "Not received yet" not in page and "Please upload" not in page
        assert UPLOAD_FORM not in page
    finally:
        await close_case(handle)


async def test_past_its_stage_the_read_model_asks_for_nothing(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
) -> None:
    """No workflow to ask (the read model only): a case past document collection."""
    ref = await make_case(sessions, stage="final_review")
    page = (await api.get(f"/portal/{token_for(portal_settings, ref)}")).text
    assert NOTHING in page and "Not received yet" not in page and UPLOAD_FORM not in page


async def test_accepted_documents_ask_for_nothing_more(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
) -> None:
    ref = await make_case(sessions)
    await add_row(sessions, ref, "government_id", "accepted", "machine-verified as of today")
    await add_row(sessions, ref, "proof_of_address", "accepted", "machine-verified as of today")
    page = (await api.get(f"/portal/{token_for(portal_settings, ref)}")).text
    assert page.count('data-status="accepted"') == 2
    assert NOTHING in page and "Please upload" not in page and UPLOAD_FORM not in page


async def test_rejected_shows_why_and_asks_again_needs_review_only_says_why(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
) -> None:
    ref = await make_case(sessions)
    await add_row(
        sessions,
        ref,
        "government_id",
        "rejected",
        "the passport expired on 3 March 2026; please upload one that is still valid",
    )
    await add_row(
        sessions,
        ref,
        "proof_of_address",
        "needs_review",
        "we could not find the name on the application (Ada Lovelace) on the document",
    )
    page = (await api.get(f"/portal/{token_for(portal_settings, ref)}")).text
    assert 'data-kind="government_id" data-status="rejected"' in page
    assert "Reason: the passport expired on 3 March 2026" in page
    assert "Please upload a new one." in page
    assert "Please upload: Government-issued photo ID." in page  # only the rejected one
    assert 'data-kind="proof_of_address" data-status="needs_review"' in page
    assert "our team is checking it" in page
    assert "Reason: we could not find the name on the application" in page
    assert UPLOAD_FORM in page  # a new ID is asked for


async def test_a_case_waiting_for_review_only_is_not_asked_for_uploads_in_words(
    api: httpx.AsyncClient, portal_settings: Settings, sessions: SessionFactory
) -> None:
    ref = await make_case(sessions)
    await add_row(sessions, ref, "government_id", "accepted", "ok")
    await add_row(sessions, ref, "proof_of_address", "needs_review", "checking the date")
    page = (await api.get(f"/portal/{token_for(portal_settings, ref)}")).text
    assert NOTHING in page and "Please upload:" not in page
    assert UPLOAD_FORM in page  # a better copy may still be sent
    async with sessions() as s:
        await s.execute(update(Case).where(Case.ref == ref).values(stage="compliance_review"))
        await s.commit()
    later = (await api.get(f"/portal/{token_for(portal_settings, ref)}")).text
    assert NOTHING in later and UPLOAD_FORM not in later
