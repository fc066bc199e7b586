"""Document verification: does the case hold a current document for each checklist line?

Judged on metadata only (kind and dates); the bytes were already checked for type on upload.
Missing or stale documents are a normal answer for the workflow to act on, not a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select, update
from temporalio import activity

from schemas.documents import (
    DocumentKind,
    DocumentProblem,
    DocumentRef,
    DocumentRequirement,
    VerificationResult,
    VerifyDocumentsInput,
)
from store.db import SessionFactory
from store.models import DocumentRow

ACCEPTED = "accepted"
REJECTED = "rejected"


@dataclass
class _Verdict:
    """What the checklist found about one document (a kind may be listed more than once)."""

    row: DocumentRow
    problems: list[DocumentProblem] = field(default_factory=list)


def judge(req: DocumentRequirement, row: DocumentRow, as_of: date) -> list[DocumentProblem]:
    """Problems of one document against one checklist line, as of the workflow's today."""
    kind = req.kind
    problems: list[DocumentProblem] = []
    if row.expires_on is not None and row.expires_on <= as_of:
        problems.append(
            DocumentProblem(
                kind=kind,
                problem="expired",
                detail=f"{req.title} expired on {row.expires_on.isoformat()}",
            )
        )
    elif row.expires_on is None and req.needs_expiry:
        problems.append(
            DocumentProblem(
                kind=kind,
                problem="no_expiry_date",
                detail=f"{req.title} needs an expiry date",
            )
        )
    if req.max_age_days is not None:
        if row.issued_on is None:
            problems.append(
                DocumentProblem(
                    kind=kind,
                    problem="no_issue_date",
                    detail=f"{req.title} needs an issue date "
                    f"(it must be issued within {req.max_age_days} days)",
                )
            )
        elif (as_of - row.issued_on).days > req.max_age_days:
            problems.append(
                DocumentProblem(
                    kind=kind,
                    problem="too_old",
                    detail=f"{req.title} was issued on {row.issued_on.isoformat()}, "
                    f"more than {req.max_age_days} days ago",
                )
            )
    return problems


def _ref(row: DocumentRow) -> DocumentRef:
    return DocumentRef(
        document_id=row.id,
        kind=DocumentKind(row.kind),
        sha256=row.sha256,
        content_type=row.content_type,
        size=row.size,
        issued_on=row.issued_on,
        expires_on=row.expires_on,
        uploaded_at=row.uploaded_at,
    )


class DocumentActivities:
    def __init__(self, session_factory: SessionFactory) -> None:
        self._sessions = session_factory

    @activity.defn(name="verify_documents")
    async def verify_documents(self, inp: VerifyDocumentsInput) -> VerificationResult:
        """Check the newest document of each required kind and record accepted/rejected on it.

        Idempotent: the same input over the same documents gives the same result and the same
        statuses, so retries are safe. ``as_of`` comes from the workflow, so a replay or a retry
        the next day judges expiry exactly as the first attempt did.
        """
        kinds = {req.kind.value for req in inp.checklist}
        problems: list[DocumentProblem] = []
        verdicts: dict[str, _Verdict] = {}
        async with self._sessions.begin() as session:
            rows = (
                await session.scalars(
                    select(DocumentRow)
                    .where(DocumentRow.case_ref == inp.case_ref, DocumentRow.kind.in_(kinds))
                    .order_by(DocumentRow.uploaded_at.desc(), DocumentRow.id.desc())
                )
            ).all()
            newest: dict[str, DocumentRow] = {}
            for candidate in rows:
                newest.setdefault(candidate.kind, candidate)

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
                found = judge(req, row, inp.as_of)
                verdicts.setdefault(row.id, _Verdict(row)).problems.extend(found)
                problems.extend(found)

            for verdict in verdicts.values():
                status = REJECTED if verdict.problems else ACCEPTED
                detail = (
                    "; ".join(p.detail for p in verdict.problems)
                    if verdict.problems
                    else f"accepted as of {inp.as_of.isoformat()}"
                )
                if (verdict.row.status, verdict.row.status_detail) != (status, detail):
                    await session.execute(
                        update(DocumentRow)
                        .where(DocumentRow.id == verdict.row.id)
                        .values(status=status, status_detail=detail)
                    )

        accepted = [_ref(v.row) for v in verdicts.values() if not v.problems]
        activity.logger.info(
            "documents verified case=%s accepted=%d problems=%s",
            inp.case_ref,
            len(accepted),
            [p.problem for p in problems],
        )
        return VerificationResult(complete=not problems, accepted=accepted, problems=problems)
