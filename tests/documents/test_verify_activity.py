"""verify_documents: the newest document of each required kind, judged on its dates."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.documents import DocumentActivities
from api.services.documents import new_document_id
from schemas.documents import (
    DocumentKind,
    DocumentRequirement,
    VerificationResult,
    VerifyDocumentsInput,
)
from store.db import SessionFactory
from store.models import DocumentRow
from tests.documents.conftest import make_case

AS_OF = date(2026, 11, 22)
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

GOV_ID = DocumentRequirement(
    kind=DocumentKind.GOVERNMENT_ID, title="Passport or national ID", needs_expiry=True
)
ADDRESS = DocumentRequirement(
    kind=DocumentKind.PROOF_OF_ADDRESS, title="Proof of address", max_age_days=90
)
CHECKLIST = [GOV_ID, ADDRESS]


async def add_document(
    sessions: SessionFactory,
    ref: str,
    kind: DocumentKind,
    *,
    issued_on: date | None = None,
    expires_on: date | None = None,
    uploaded_at: datetime = T0,
) -> str:
    """A document row as the upload endpoint writes it (the bytes do not matter here)."""
    doc_id = new_document_id()
    digest = secrets.token_hex(32)
    async with sessions.begin() as s:
        s.add(
            DocumentRow(
                id=doc_id,
                case_ref=ref,
                kind=kind.value,
                filename="x.pdf",
                content_type="application/pdf",
                size=123,
                sha256=digest,
                storage_key=f"cases/{ref}/{digest}",
                issued_on=issued_on,
                expires_on=expires_on,
                uploaded_by="test",
                uploaded_at=uploaded_at,
                status="received",
            )
        )
    return doc_id


async def statuses(sessions: SessionFactory, ref: str) -> dict[str, tuple[str, str | None]]:
    async with sessions() as s:
        rows = await s.scalars(select(DocumentRow).where(DocumentRow.case_ref == ref))
        return {r.id: (r.status, r.status_detail) for r in rows}


async def verify(
    sessions: SessionFactory, ref: str, checklist: list[DocumentRequirement] = CHECKLIST
) -> VerificationResult:
    activities = DocumentActivities(sessions)
    inp = VerifyDocumentsInput(case_ref=ref, checklist=checklist, as_of=AS_OF)
    return await ActivityEnvironment().run(activities.verify_documents, inp)


def problems(result: VerificationResult) -> list[tuple[str, str]]:
    return [(p.kind.value, p.problem) for p in result.problems]


async def test_a_complete_checklist_is_complete(sessions):
    ref = await make_case(sessions)
    gov = await add_document(
        sessions, ref, DocumentKind.GOVERNMENT_ID, expires_on=AS_OF + timedelta(days=1)
    )
    addr = await add_document(
        sessions, ref, DocumentKind.PROOF_OF_ADDRESS, issued_on=AS_OF - timedelta(days=90)
    )
    result = await verify(sessions, ref)
    assert result.complete and result.problems == []
    assert {d.document_id for d in result.accepted} == {gov, addr}
    accepted = next(d for d in result.accepted if d.document_id == gov)
    assert accepted.kind == DocumentKind.GOVERNMENT_ID
    assert accepted.sha256 and accepted.content_type == "application/pdf"
    assert {s for s, _ in (await statuses(sessions, ref)).values()} == {"accepted"}


async def test_missing_document(sessions):
    ref = await make_case(sessions)
    await add_document(sessions, ref, DocumentKind.GOVERNMENT_ID, expires_on=date(2030, 1, 1))
    result = await verify(sessions, ref)
    assert not result.complete
    assert problems(result) == [("proof_of_address", "missing")]
    assert "Proof of address" in result.problems[0].detail
    assert [d.kind for d in result.accepted] == [DocumentKind.GOVERNMENT_ID]


async def test_no_documents_at_all(sessions):
    ref = await make_case(sessions)
    result = await verify(sessions, ref)
    assert problems(result) == [("government_id", "missing"), ("proof_of_address", "missing")]
    assert result.accepted == []


async def test_expired_on_the_day_itself(sessions):
    ref = await make_case(sessions)
    gov = await add_document(sessions, ref, DocumentKind.GOVERNMENT_ID, expires_on=AS_OF)
    result = await verify(sessions, ref, [GOV_ID])
    assert problems(result) == [("government_id", "expired")]
    assert result.accepted == []
    status, detail = (await statuses(sessions, ref))[gov]
    assert status == "rejected" and detail is not None and "2026-11-22" in detail


async def test_no_expiry_date_when_one_is_needed(sessions):
    ref = await make_case(sessions)
    await add_document(sessions, ref, DocumentKind.GOVERNMENT_ID)
    result = await verify(sessions, ref, [GOV_ID])
    assert problems(result) == [("government_id", "no_expiry_date")]


async def test_too_old_and_no_issue_date(sessions):
    ref = await make_case(sessions)
    old = await add_document(
        sessions, ref, DocumentKind.PROOF_OF_ADDRESS, issued_on=AS_OF - timedelta(days=91)
    )
    result = await verify(sessions, ref, [ADDRESS])
    assert problems(result) == [("proof_of_address", "too_old")]
    assert (await statuses(sessions, ref))[old][0] == "rejected"

    other = await make_case(sessions)
    await add_document(sessions, other, DocumentKind.PROOF_OF_ADDRESS)
    result = await verify(sessions, other, [ADDRESS])
    assert problems(result) == [("proof_of_address", "no_issue_date")]


async def test_the_newest_document_of_a_kind_is_the_one_judged(sessions):
    ref = await make_case(sessions)
    stale = await add_document(
        sessions, ref, DocumentKind.GOVERNMENT_ID, expires_on=date(2020, 1, 1)
    )
    fresh = await add_document(
        sessions,
        ref,
        DocumentKind.GOVERNMENT_ID,
        expires_on=date(2031, 1, 1),
        uploaded_at=T0 + timedelta(hours=1),
    )
    result = await verify(sessions, ref, [GOV_ID])
    assert result.complete and [d.document_id for d in result.accepted] == [fresh]
    seen = await statuses(sessions, ref)
    assert seen[fresh][0] == "accepted"
    assert seen[stale] == ("received", None)  # not considered, so not touched


async def test_running_twice_gives_the_same_result_and_statuses(sessions):
    ref = await make_case(sessions)
    await add_document(sessions, ref, DocumentKind.GOVERNMENT_ID, expires_on=AS_OF)
    await add_document(sessions, ref, DocumentKind.PROOF_OF_ADDRESS, issued_on=AS_OF)
    first = await verify(sessions, ref)
    after_first = await statuses(sessions, ref)
    second = await verify(sessions, ref)
    assert second == first
    assert await statuses(sessions, ref) == after_first
    assert not first.complete and problems(first) == [("government_id", "expired")]


async def test_a_problem_fixed_by_a_new_upload_is_accepted_next_time(sessions):
    ref = await make_case(sessions)
    await add_document(sessions, ref, DocumentKind.GOVERNMENT_ID, expires_on=AS_OF)
    assert not (await verify(sessions, ref, [GOV_ID])).complete
    await add_document(
        sessions,
        ref,
        DocumentKind.GOVERNMENT_ID,
        expires_on=date(2036, 1, 1),
        uploaded_at=T0 + timedelta(days=1),
    )
    assert (await verify(sessions, ref, [GOV_ID])).complete
