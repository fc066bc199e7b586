"""Document verification: read each document the checklist asks for, then judge it.

What the uploader typed (the kind's dates) is no longer trusted: the file is read (a PDF's
text, OCR of an image, a passport's machine-readable zone; ``integrations.documents``) and
judged against the checklist line and the client's profile. Each document gets a verdict —
machine_verified, needs_review or rejected — with reasons for staff and plain words for the
client, stored on the document.

The activity stays thin: load (one short transaction), read what has not been read yet
(outside any transaction; in the reader's threads, within its caps and a timeout that fits
the activity's own), judge (pure), record (one short transaction). A reading is kept on the
document, so a retry, or the next upload of another kind, judges again without reading again.

Missing, rejected and needs-review documents are a normal answer for the workflow to act on,
not a failure: a file that cannot be read is needs_review, never an exception.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from temporalio import activity

from core.settings import Settings, get_settings
from integrations.blobstore import BlobNotFoundError, BlobStore, InvalidBlobKeyError, LocalBlobStore
from integrations.documents.common import ReadLimits, Unreadable
from integrations.documents.reader import DocumentReader, Reading
from integrations.documents.verdicts import (
    ClientFacts,
    Finding,
    Judgement,
    Verdict,
    judge_dated_document,
    judge_identity,
)
from schemas.documents import (
    DocumentJudgement,
    DocumentKind,
    DocumentProblem,
    DocumentRef,
    DocumentRequirement,
    DocumentReview,
    VerificationResult,
    VerifyDocumentsInput,
)
from store.db import SessionFactory
from store.models import Case, DocumentRow

ACCEPTED = "accepted"
REJECTED = "rejected"
NEEDS_REVIEW = "needs_review"
STATUS = {
    Verdict.MACHINE_VERIFIED: ACCEPTED,
    Verdict.REJECTED: REJECTED,
    Verdict.NEEDS_REVIEW: NEEDS_REVIEW,
}
REJECTED_ON_REVIEW = "our team could not accept this document; please send another"
TIME_MARGIN = timedelta(seconds=4)  # left for loading, judging and recording

NOUNS = {
    DocumentKind.PROOF_OF_ADDRESS: "document",
    DocumentKind.CERTIFICATE_OF_INCORPORATION: "certificate",
    DocumentKind.BENEFICIAL_OWNERSHIP: "declaration",
    DocumentKind.SECURITY_QUESTIONNAIRE: "questionnaire",
}


@dataclass
class _Verdict:
    """What the checklist found about one document (a kind may be listed more than once)."""

    row: DocumentRow
    judgements: list[Judgement] = field(default_factory=list)
    problems: list[DocumentProblem] = field(default_factory=list)
    review: DocumentReview | None = None  # a person settled what the machine could not

    @property
    def accepted(self) -> bool:
        if self.review is not None:
            return self.review.decision == "accepted"
        return self.verdict == Verdict.MACHINE_VERIFIED

    @property
    def status(self) -> str:
        if self.review is not None:
            return ACCEPTED if self.review.decision == "accepted" else REJECTED
        return STATUS[self.verdict]

    def detail(self, as_of: date) -> str:
        """The status line on the document (the client reads a rejection's)."""
        review = self.review
        if review is not None and review.decision == "accepted":
            return f"accepted on review by {review.by}" + (
                f": {review.note}" if review.note else ""
            )
        if review is not None:
            return review.note or REJECTED_ON_REVIEW
        blocking = [f for f in self.findings if f.verdict != Verdict.MACHINE_VERIFIED]
        if blocking:
            return "; ".join(dict.fromkeys(f.client for f in blocking))
        return f"machine-verified as of {as_of.isoformat()}"

    @property
    def verdict(self) -> Verdict:
        order = [Verdict.MACHINE_VERIFIED, Verdict.NEEDS_REVIEW, Verdict.REJECTED]
        return max(
            (j.verdict for j in self.judgements), key=order.index, default=Verdict.NEEDS_REVIEW
        )

    @property
    def findings(self) -> list[Finding]:
        return [f for j in self.judgements for f in j.findings]

    @property
    def facts(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for j in self.judgements:
            merged.update(j.facts)
        return merged


def client_facts(profile: dict[str, Any], *, client_type: str, fallback_name: str) -> ClientFacts:
    """The application's facts the judges compare with (a lenient read of the stored
    profile: a case opened before a field existed still verifies)."""
    born: date | None = None
    try:
        born = date.fromisoformat(str(profile.get("date_of_birth") or ""))
    except ValueError:
        born = None
    return ClientFacts(
        name=str(profile.get("name") or fallback_name),
        client_type=str(profile.get("client_type") or client_type),
        country=profile.get("country"),
        nationality=profile.get("nationality"),
        date_of_birth=born,
    )


def judge(
    req: DocumentRequirement, row: DocumentRow, reading: Reading, client: ClientFacts, as_of: date
) -> Judgement:
    """One document against one checklist line, as of the workflow's today."""
    if req.kind == DocumentKind.GOVERNMENT_ID:
        return judge_identity(reading, client, as_of=as_of, typed_expiry=row.expires_on)
    judged = judge_dated_document(
        reading,
        client,
        as_of=as_of,
        max_age_days=req.max_age_days,
        typed_issued=row.issued_on,
        noun=NOUNS.get(req.kind, "document"),
    )
    if req.needs_expiry and judged.verdict != Verdict.REJECTED:
        judged.findings.append(
            Finding(
                "no_expiry_date",
                Verdict.NEEDS_REVIEW,
                f"{req.title} needs an expiry date; only passports and ID cards are read for one",
                "our team will check the expiry date on the document",
            )
        )
        judged.verdict = Verdict.NEEDS_REVIEW
    return judged


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _ref(row: DocumentRow, facts: dict[str, Any], verdict: Verdict) -> DocumentRef:
    return DocumentRef(
        document_id=row.id,
        kind=DocumentKind(row.kind),
        sha256=row.sha256,
        content_type=row.content_type,
        size=row.size,
        issued_on=_day(facts.get("issued_on")),
        expires_on=_day(facts.get("expires_on")),
        uploaded_at=row.uploaded_at,
        verdict=verdict.value,
    )


def _apply_reviews(
    verdicts: dict[str, _Verdict],
    problems: list[DocumentProblem],
    reviews: dict[str, DocumentReview],
) -> list[DocumentProblem]:
    """A person's decision settles a ``needs_review`` document: accepted, its problems go;
    rejected, one problem carries the reviewer's note to the client. A document the machine
    verified or proved wrong is not a person's to overturn here (waive the step instead)."""
    for v in verdicts.values():
        review = reviews.get(v.row.id)
        if review is None or v.verdict != Verdict.NEEDS_REVIEW:
            continue
        v.review = review
        problems = [p for p in problems if p.document_id != v.row.id]
        v.problems = []
        if review.decision != "accepted":
            rejected = DocumentProblem(
                kind=DocumentKind(v.row.kind),
                problem="rejected_on_review",
                detail=review.note or REJECTED_ON_REVIEW,
                verdict=Verdict.REJECTED.value,
                document_id=v.row.id,
            )
            v.problems.append(rejected)
            problems.append(rejected)
    return problems


def _limits(settings: Settings) -> ReadLimits:
    return ReadLimits(
        max_bytes=settings.document_read_max_bytes,
        max_pages=settings.document_read_max_pages,
        max_pixels=settings.document_read_max_pixels,
        timeout_seconds=settings.document_read_timeout_seconds,
    )


def _time_left() -> float | None:
    """Seconds this attempt may still spend reading, from its start-to-close timeout."""
    try:
        info = activity.info()
    except RuntimeError:
        return None
    budget = info.start_to_close_timeout
    now = datetime.now(UTC)
    if not budget or not info.started_time or now - info.started_time > budget:
        return None  # no timeout, or no believable start time (a test environment's epoch)
    ends = info.started_time + budget - TIME_MARGIN
    return max((ends - now).total_seconds(), 0.5)


class DocumentActivities:
    """``settings`` gives the blob store and the reader's caps (default: the process's)."""

    def __init__(
        self,
        session_factory: SessionFactory,
        settings: Settings | None = None,
        *,
        blobs: BlobStore | None = None,
        reader: DocumentReader | None = None,
    ) -> None:
        settings = settings or get_settings()
        self._sessions = session_factory
        self._blobs = blobs or LocalBlobStore(
            (settings.blob_dir or settings.data_dir / "blobs").resolve()
        )
        self._reader = reader or DocumentReader(
            _limits(settings), threads=settings.document_read_threads
        )

    async def _read(self, row: DocumentRow, *, budget_seconds: float | None) -> Reading:
        """The document's reading: the one kept on it, else read now from the blob store."""
        if row.reading:
            kept = Reading.from_dict(row.reading)
            if kept is not None:
                return kept
        try:
            data = await asyncio.to_thread(self._blobs.get, row.storage_key)
        except (BlobNotFoundError, InvalidBlobKeyError):
            activity.logger.error("document blob missing case=%s id=%s", row.case_ref, row.id)
            return Reading.failed(Unreadable("missing_file", "the stored file is missing"))
        if hashlib.sha256(data).hexdigest() != row.sha256:
            activity.logger.error("document blob corrupt case=%s id=%s", row.case_ref, row.id)
            return Reading.failed(Unreadable("corrupt_file", "the stored file fails its checksum"))
        return await self._reader.read(
            data,
            row.content_type,
            want_mrz=row.kind == DocumentKind.GOVERNMENT_ID.value,
            budget_seconds=budget_seconds,
        )

    @activity.defn(name="verify_documents")
    async def verify_documents(self, inp: VerifyDocumentsInput) -> VerificationResult:
        """Read and judge the newest document of each required kind; record the verdicts.

        Idempotent: the same input over the same documents gives the same result and the same
        statuses, so retries are safe. ``as_of`` comes from the workflow, so a replay or a retry
        the next day judges expiry exactly as the first attempt did.
        """
        kinds = {req.kind.value for req in inp.checklist}
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(DocumentRow)
                    .where(DocumentRow.case_ref == inp.case_ref, DocumentRow.kind.in_(kinds))
                    .order_by(DocumentRow.uploaded_at.desc(), DocumentRow.id.desc())
                )
            ).all()
            case = await session.get(Case, inp.case_ref)
            client = client_facts(
                dict(case.profile or {}) if case is not None else {},
                client_type=case.client_type if case is not None else "individual",
                fallback_name=case.client_name if case is not None else "",
            )
            session.expunge_all()
        newest: dict[str, DocumentRow] = {}
        for candidate in rows:
            newest.setdefault(candidate.kind, candidate)

        readings: dict[str, Reading] = {}
        needed = [
            newest[k] for k in dict.fromkeys(r.kind.value for r in inp.checklist) if k in newest
        ]
        for i, doc in enumerate(needed):
            left = _time_left()
            share = None if left is None else left / (len(needed) - i)
            readings[doc.id] = await self._read(doc, budget_seconds=share)

        problems: list[DocumentProblem] = []
        verdicts: dict[str, _Verdict] = {}
        for req in inp.checklist:
            row = newest.get(req.kind.value)
            if row is None:
                problems.append(
                    DocumentProblem(
                        kind=req.kind,
                        problem="missing",
                        detail=f"{req.title} has not been uploaded",
                    )
                )
                continue
            judged = judge(req, row, readings[row.id], client, inp.as_of)
            verdict = verdicts.setdefault(row.id, _Verdict(row))
            verdict.judgements.append(judged)
            found = [
                DocumentProblem(
                    kind=req.kind,
                    problem=f.code,
                    detail=f.client,
                    verdict=f.verdict.value,
                    document_id=row.id,
                )
                for f in judged.blocking
            ]
            verdict.problems.extend(found)
            problems.extend(found)

        problems = _apply_reviews(verdicts, problems, inp.reviews)
        await self._record(verdicts, readings, inp.as_of)
        accepted = [_ref(v.row, v.facts, v.verdict) for v in verdicts.values() if v.accepted]
        judgements = [
            DocumentJudgement(
                document_id=v.row.id,
                kind=DocumentKind(v.row.kind),
                verdict=v.verdict.value,
                reasons=[f.staff for f in v.findings]
                + ([f"{v.status} on review by {v.review.by}"] if v.review else []),
                client_reasons=[f.client for f in v.findings if f.client],
            )
            for v in verdicts.values()
        ]
        activity.logger.info(
            "documents verified case=%s verdicts=%s problems=%s",
            inp.case_ref,
            {v.row.kind: v.verdict.value for v in verdicts.values()},
            [p.problem for p in problems],
        )
        return VerificationResult(
            complete=not problems,
            accepted=accepted,
            problems=problems,
            judgements=judgements,
            needs_review=any(v.verdict == Verdict.NEEDS_REVIEW for v in verdicts.values()),
        )

    async def _record(
        self, verdicts: dict[str, _Verdict], readings: dict[str, Reading], as_of: date
    ) -> None:
        """Write each verdict (and a new reading) on its document; unchanged rows are not
        written, so a retry changes nothing."""
        async with self._sessions.begin() as session:
            for v in verdicts.values():
                status, detail = v.status, v.detail(as_of)
                reasons = [f.as_dict() for f in v.findings]
                reading = readings[v.row.id]
                values: dict[str, Any] = {}
                if (v.row.status, v.row.status_detail) != (status, detail):
                    values.update(status=status, status_detail=detail)
                if (v.row.verdict, v.row.verdict_reasons) != (v.verdict.value, reasons):
                    values.update(verdict=v.verdict.value, verdict_reasons=reasons)
                kept = bool(v.row.reading) and Reading.from_dict(v.row.reading or {}) is not None
                if not kept and not reading.transient:
                    values["reading"] = reading.as_dict()
                if values:
                    values["verified_at"] = datetime.now(UTC)
                    await session.execute(
                        update(DocumentRow).where(DocumentRow.id == v.row.id).values(**values)
                    )
