"""verify_documents: the newest document of each required kind is read and judged.

The files are generated documents (``tests.documents.real_documents``) stored in a throwaway
blob store; the client is Ada Lovelace (``tests.factories.profile``). What the uploader typed
(the dates on the row) is not trusted: the document's own dates decide.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from temporalio.testing import ActivityEnvironment

from activities.documents import DocumentActivities
from api.services.documents import new_document_id
from integrations.blobstore import LocalBlobStore, case_document_key
from integrations.documents.common import ReadLimits, TextLine
from integrations.documents.reader import DocumentReader
from schemas.documents import (
    DocumentKind,
    DocumentRequirement,
    VerificationResult,
    VerifyDocumentsInput,
)
from store.db import SessionFactory
from store.models import Case, DocumentRow
from tests.conftest import test_settings
from tests.documents import real_documents as docs
from tests.documents.conftest import make_case

AS_OF = date(2026, 11, 22)
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
VALID_UNTIL = date(2031, 1, 31)

GOV_ID = DocumentRequirement(
    kind=DocumentKind.GOVERNMENT_ID, title="Passport or national ID", needs_expiry=True
)
ADDRESS = DocumentRequirement(
    kind=DocumentKind.PROOF_OF_ADDRESS, title="Proof of address", max_age_days=90
)
CHECKLIST = [GOV_ID, ADDRESS]


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


async def add_document(
    sessions: SessionFactory,
    blobs: LocalBlobStore,
    ref: str,
    kind: DocumentKind,
    data: bytes,
    *,
    content_type: str = "application/pdf",
    issued_on: date | None = None,
    expires_on: date | None = None,
    uploaded_at: datetime = T0,
    store: bool = True,
) -> str:
    """A document as the upload endpoint leaves it: bytes in the blob store, a row."""
    doc_id = new_document_id()
    digest = hashlib.sha256(data).hexdigest()
    key = case_document_key(ref, digest)
    if store:
        blobs.put(key, data)
    async with sessions.begin() as s:
        s.add(
            DocumentRow(
                id=doc_id,
                case_ref=ref,
                kind=kind.value,
                filename="upload",
                content_type=content_type,
                size=len(data),
                sha256=digest,
                storage_key=key,
                issued_on=issued_on,
                expires_on=expires_on,
                uploaded_by="test",
                uploaded_at=uploaded_at,
                status="received",
            )
        )
    return doc_id


async def rows(sessions: SessionFactory, ref: str) -> dict[str, DocumentRow]:
    async with sessions() as s:
        found = await s.scalars(select(DocumentRow).where(DocumentRow.case_ref == ref))
        return {r.id: r for r in found}


def activities(sessions: SessionFactory, blobs: LocalBlobStore, **kw: Any) -> DocumentActivities:
    return DocumentActivities(sessions, test_settings(), blobs=blobs, **kw)


async def verify(
    sessions: SessionFactory,
    blobs: LocalBlobStore,
    ref: str,
    checklist: list[DocumentRequirement] = CHECKLIST,
    **kw: Any,
) -> VerificationResult:
    inp = VerifyDocumentsInput(case_ref=ref, checklist=checklist, as_of=AS_OF)
    return await ActivityEnvironment().run(activities(sessions, blobs, **kw).verify_documents, inp)


def problems(result: VerificationResult) -> list[tuple[str, str]]:
    return [(p.kind.value, p.problem) for p in result.problems]


async def test_a_complete_checklist_is_complete(sessions, blobs):
    ref = await make_case(sessions)
    gov = await add_document(
        sessions, blobs, ref, DocumentKind.GOVERNMENT_ID, docs.passport_pdf(expires=VALID_UNTIL)
    )
    addr = await add_document(
        sessions,
        blobs,
        ref,
        DocumentKind.PROOF_OF_ADDRESS,
        docs.bill_pdf(issued=AS_OF - timedelta(days=90)),
    )
    result = await verify(sessions, blobs, ref)
    assert result.complete and result.problems == [] and not result.needs_review
    assert {d.document_id for d in result.accepted} == {gov, addr}
    passport = next(d for d in result.accepted if d.document_id == gov)
    assert passport.kind == DocumentKind.GOVERNMENT_ID and passport.verdict == "machine_verified"
    assert passport.expires_on == VALID_UNTIL  # read from the MRZ, not typed
    bill = next(d for d in result.accepted if d.document_id == addr)
    assert bill.issued_on == AS_OF - timedelta(days=90)
    stored = await rows(sessions, ref)
    assert {r.status for r in stored.values()} == {"accepted"}
    assert {r.verdict for r in stored.values()} == {"machine_verified"}
    assert all(r.reading and r.verified_at for r in stored.values())
    assert {j.verdict for j in result.judgements} == {"machine_verified"}


async def test_a_valid_passport_image_is_machine_verified(sessions, blobs):
    ref = await make_case(sessions)
    await add_document(
        sessions,
        blobs,
        ref,
        DocumentKind.GOVERNMENT_ID,
        docs.passport_png(expires=VALID_UNTIL),
        content_type="image/png",
    )
    result = await verify(sessions, blobs, ref, [GOV_ID])
    assert result.complete, result.problems
    assert result.accepted[0].expires_on == VALID_UNTIL
    (row,) = (await rows(sessions, ref)).values()
    assert row.verdict == "machine_verified" and row.reading is not None
    assert row.reading["source"] == "ocr" and row.reading["mrz"]["surname"] == "LOVELACE"


async def test_a_changed_check_digit_is_rejected_with_the_reason(sessions, blobs):
    ref = await make_case(sessions)
    doc = await add_document(
        sessions,
        blobs,
        ref,
        DocumentKind.GOVERNMENT_ID,
        docs.passport_png(expires=VALID_UNTIL, tamper=True),
        content_type="image/png",
    )
    result = await verify(sessions, blobs, ref, [GOV_ID])
    assert problems(result) == [("government_id", "check_digit")]
    assert result.problems[0].verdict == "rejected" and result.problems[0].document_id == doc
    assert "do not check out" in result.problems[0].detail
    row = (await rows(sessions, ref))[doc]
    assert row.status == "rejected" and row.verdict == "rejected"
    assert "check digit" in row.verdict_reasons[0]["staff"]
    assert row.status_detail is not None and "machine-readable lines" in row.status_detail


async def test_an_expired_passport_is_rejected_in_plain_words(sessions, blobs):
    ref = await make_case(sessions)
    gov = await add_document(
        sessions,
        blobs,
        ref,
        DocumentKind.GOVERNMENT_ID,
        docs.passport_pdf(expires=AS_OF),  # expires on the day itself
        expires_on=date(2031, 1, 1),  # what the uploader typed: not trusted
    )
    result = await verify(sessions, blobs, ref, [GOV_ID])
    assert problems(result) == [("government_id", "expired")]
    assert result.problems[0].detail.startswith("the passport expired on 22 November 2026")
    row = (await rows(sessions, ref))[gov]
    assert row.status == "rejected"
    codes = [r["code"] for r in row.verdict_reasons]
    assert codes == ["expired", "typed_expiry_differs"]


async def test_another_persons_passport_needs_review(sessions, blobs):
    ref = await make_case(sessions)
    await add_document(
        sessions, blobs, ref, DocumentKind.GOVERNMENT_ID, docs.passport_pdf(docs.GRACE)
    )
    result = await verify(sessions, blobs, ref, [GOV_ID])
    assert problems(result) == [("government_id", "name_mismatch")]
    assert result.problems[0].verdict == "needs_review" and result.needs_review
    assert result.problems[0].detail == "the name on the document does not match the application"
    assert next(iter((await rows(sessions, ref)).values())).status == "needs_review"


async def test_name_order_and_a_middle_name_still_match(sessions, blobs):
    ref = await make_case(sessions)
    ada = dataclasses.replace(docs.ADA, middle="Augusta")
    await add_document(sessions, blobs, ref, DocumentKind.GOVERNMENT_ID, docs.passport_pdf(ada))
    assert (await verify(sessions, blobs, ref, [GOV_ID])).complete


async def test_date_of_birth_and_nationality_are_compared_when_given(sessions, blobs):
    ref = await make_case(sessions)

    async def set_profile(**fields: str) -> None:
        async with sessions.begin() as s:
            profile = dict(await s.scalar(select(Case.profile).where(Case.ref == ref)) or {})
            await s.execute(
                update(Case).where(Case.ref == ref).values(profile={**profile, **fields})
            )

    await set_profile(date_of_birth="1985-12-11", nationality="FR")
    await add_document(sessions, blobs, ref, DocumentKind.GOVERNMENT_ID, docs.passport_pdf())
    result = await verify(sessions, blobs, ref, [GOV_ID])
    assert problems(result) == [
        ("government_id", "birth_date_mismatch"),
        ("government_id", "nationality_mismatch"),
    ]
    await set_profile(date_of_birth="1985-12-10", nationality="GB")
    assert (await verify(sessions, blobs, ref, [GOV_ID])).complete


async def test_missing_document(sessions, blobs):
    ref = await make_case(sessions)
    await add_document(sessions, blobs, ref, DocumentKind.GOVERNMENT_ID, docs.passport_pdf())
    result = await verify(sessions, blobs, ref)
    assert not result.complete
    assert problems(result) == [("proof_of_address", "missing")]
    assert "Proof of address" in result.problems[0].detail
    assert [d.kind for d in result.accepted] == [DocumentKind.GOVERNMENT_ID]


async def test_no_documents_at_all(sessions, blobs):
    ref = await make_case(sessions)
    result = await verify(sessions, blobs, ref)
    assert problems(result) == [("government_id", "missing"), ("proof_of_address", "missing")]
    assert result.accepted == []


async def test_a_stale_proof_of_address_is_rejected(sessions, blobs):
    ref = await make_case(sessions)
    old = await add_document(
        sessions,
        blobs,
        ref,
        DocumentKind.PROOF_OF_ADDRESS,
        docs.bill_pdf(issued=AS_OF - timedelta(days=91)),
        issued_on=AS_OF - timedelta(days=2),  # typed as recent: not trusted
    )
    result = await verify(sessions, blobs, ref, [ADDRESS])
    assert problems(result) == [("proof_of_address", "too_old")]
    assert result.problems[0].detail.startswith("the document is dated 23 August 2026")
    assert (await rows(sessions, ref))[old].status == "rejected"


async def test_a_bill_for_someone_else_needs_review(sessions, blobs):
    ref = await make_case(sessions)
    await add_document(
        sessions, blobs, ref, DocumentKind.PROOF_OF_ADDRESS, docs.bill_pdf("Grace Hopper")
    )
    result = await verify(sessions, blobs, ref, [ADDRESS])
    assert problems(result) == [("proof_of_address", "name_not_found")]
    assert result.needs_review


@pytest.mark.parametrize(
    ("what", "data", "content_type", "code"),
    [
        ("empty pdf", docs.empty_pdf(), "application/pdf", "no_pages"),
        ("sign-in screenshot", docs.sign_in_screenshot(), "image/png", "no_mrz"),
        ("decompression bomb", docs.huge_png(), "image/png", "too_many_pixels"),
    ],
)
async def test_an_unreadable_file_needs_review_and_never_passes(
    sessions, blobs, what, data, content_type, code
):
    ref = await make_case(sessions)
    doc = await add_document(
        sessions,
        blobs,
        ref,
        DocumentKind.GOVERNMENT_ID,
        data,
        content_type=content_type,
        expires_on=date(2031, 1, 1),  # a future expiry typed in: it used to pass
    )
    result = await verify(sessions, blobs, ref, [GOV_ID])
    assert not result.complete and result.needs_review, what
    assert result.problems[0].verdict == "needs_review"
    row = (await rows(sessions, ref))[doc]
    assert row.status == "needs_review"
    assert code in row.verdict_reasons[0]["staff"] or row.verdict_reasons[0]["code"] == code


async def test_an_oversized_file_is_not_read(sessions, blobs):
    ref = await make_case(sessions)
    await add_document(sessions, blobs, ref, DocumentKind.PROOF_OF_ADDRESS, docs.bill_pdf())
    small = DocumentReader(ReadLimits(max_bytes=1000))
    result = await verify(sessions, blobs, ref, [ADDRESS], reader=small)
    assert problems(result) == [("proof_of_address", "unreadable")]
    assert "too large" in result.problems[0].detail


class _SlowEngine:
    def read(self, image: Any, *, long_lines_only: bool = False) -> list[TextLine]:
        import time

        time.sleep(1.0)
        return []


async def test_a_read_that_takes_too_long_needs_review_and_is_read_again_later(sessions, blobs):
    ref = await make_case(sessions)
    await add_document(
        sessions,
        blobs,
        ref,
        DocumentKind.GOVERNMENT_ID,
        docs.passport_png(),
        content_type="image/png",
    )
    slow = DocumentReader(ReadLimits(timeout_seconds=0.2), engine=_SlowEngine())
    result = await verify(sessions, blobs, ref, [GOV_ID], reader=slow)
    assert result.needs_review and result.problems[0].problem == "unreadable"
    (row,) = (await rows(sessions, ref)).values()
    assert row.reading is None  # a timeout is not remembered: the next check reads again
    await asyncio.sleep(1.0)  # let the slow thread finish before the next test


async def test_a_file_missing_from_storage_needs_review(sessions, blobs):
    ref = await make_case(sessions)
    await add_document(
        sessions, blobs, ref, DocumentKind.GOVERNMENT_ID, docs.passport_pdf(), store=False
    )
    result = await verify(sessions, blobs, ref, [GOV_ID])
    assert result.needs_review and problems(result) == [("government_id", "unreadable")]


async def test_the_newest_document_of_a_kind_is_the_one_judged(sessions, blobs):
    ref = await make_case(sessions)
    stale = await add_document(
        sessions,
        blobs,
        ref,
        DocumentKind.GOVERNMENT_ID,
        docs.passport_pdf(expires=date(2020, 1, 1)),
    )
    fresh = await add_document(
        sessions,
        blobs,
        ref,
        DocumentKind.GOVERNMENT_ID,
        docs.passport_pdf(expires=VALID_UNTIL),
        uploaded_at=T0 + timedelta(hours=1),
    )
    result = await verify(sessions, blobs, ref, [GOV_ID])
    assert result.complete and [d.document_id for d in result.accepted] == [fresh]
    seen = await rows(sessions, ref)
    assert seen[fresh].status == "accepted"
    assert (seen[stale].status, seen[stale].verdict) == ("received", None)  # not considered


class _CountingReader(DocumentReader):
    calls = 0

    def read_sync(self, *args: Any, **kwargs: Any) -> Any:
        type(self).calls += 1
        return super().read_sync(*args, **kwargs)


async def test_running_twice_gives_the_same_result_and_reads_once(sessions, blobs):
    ref = await make_case(sessions)
    await add_document(
        sessions, blobs, ref, DocumentKind.GOVERNMENT_ID, docs.passport_pdf(expires=AS_OF)
    )
    await add_document(
        sessions, blobs, ref, DocumentKind.PROOF_OF_ADDRESS, docs.bill_pdf(issued=AS_OF)
    )
    reader = _CountingReader()
    first = await verify(sessions, blobs, ref, reader=reader)
    after_first = {
        k: (r.status, r.status_detail, r.verdict) for k, r in (await rows(sessions, ref)).items()
    }
    second = await verify(sessions, blobs, ref, reader=reader)
    assert second == first
    after = {
        k: (r.status, r.status_detail, r.verdict) for k, r in (await rows(sessions, ref)).items()
    }
    assert after == after_first
    assert _CountingReader.calls == 2  # the second run judged the kept readings
    assert not first.complete and problems(first) == [("government_id", "expired")]


async def test_a_problem_fixed_by_a_new_upload_is_accepted_next_time(sessions, blobs):
    ref = await make_case(sessions)
    await add_document(
        sessions, blobs, ref, DocumentKind.GOVERNMENT_ID, docs.passport_pdf(expires=AS_OF)
    )
    assert not (await verify(sessions, blobs, ref, [GOV_ID])).complete
    await add_document(
        sessions,
        blobs,
        ref,
        DocumentKind.GOVERNMENT_ID,
        docs.passport_pdf(expires=date(2036, 1, 1)),
        uploaded_at=T0 + timedelta(days=1),
    )
    assert (await verify(sessions, blobs, ref, [GOV_ID])).complete
