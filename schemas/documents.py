"""Client documents: what the checklist asks for, what was uploaded, what verification found.

The workflow only ever sees references (ids, kinds, dates), never file bytes.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

DOCUMENT_ID_PATTERN = r"^doc_[0-9A-Z]{26}$"
"""A stored document's id (``api.services.documents.new_document_id``)."""


class DocumentKind(StrEnum):
    GOVERNMENT_ID = "government_id"
    PROOF_OF_ADDRESS = "proof_of_address"
    CERTIFICATE_OF_INCORPORATION = "certificate_of_incorporation"
    BENEFICIAL_OWNERSHIP = "beneficial_ownership_declaration"
    SECURITY_QUESTIONNAIRE = "security_questionnaire"
    OTHER = "other"


class DocumentRequirement(BaseModel):
    """One checklist line: a kind of document and how fresh it must be."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: DocumentKind
    title: str
    max_age_days: int | None = Field(
        default=None, description="e.g. proof of address issued within 90 days"
    )
    needs_expiry: bool = Field(default=False, description="ID documents must carry an expiry")


class DocumentRef(BaseModel):
    """What the workflow knows of an uploaded document."""

    document_id: str
    kind: DocumentKind
    sha256: str
    content_type: str
    size: int
    issued_on: date | None = None
    expires_on: date | None = None
    uploaded_at: datetime
    verdict: str | None = Field(
        default=None, description="machine_verified | needs_review | rejected (read, judged)"
    )


class DocumentVerdict(StrEnum):
    """What reading a document concluded. The models carry it as a plain string, so a value
    added later does not break a worker or a history that does not know it."""

    MACHINE_VERIFIED = "machine_verified"
    NEEDS_REVIEW = "needs_review"
    REJECTED = "rejected"


class DocumentProblem(BaseModel):
    kind: DocumentKind
    problem: str = Field(
        description="missing | expired | too_old | no_expiry_date | unreadable | no_mrz | "
        "check_digit | mrz_unclear | wrong_document | document_type | name_mismatch | "
        "birth_date_mismatch | nationality_mismatch | name_not_found | no_date | no_text | "
        "rejected_on_review"
    )
    detail: str = Field(description="What to fix, in plain words for the client")
    verdict: str | None = Field(
        default=None,
        description="needs_review (a person decides) or rejected (the document proves it "
        "wrong); None for a missing document or an older activity",
    )
    document_id: str | None = None


class DocumentReview(BaseModel):
    """A person's decision on a document the machine could not settle (``needs_review``).

    It overrides only that verdict: a document the machine proved wrong stays rejected, and a
    new upload of the same kind is judged afresh."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision: str = Field(description="accepted | rejected")
    by: str
    at: datetime
    note: str | None = Field(default=None, description="Why; a rejection's note goes to the client")


class VerifyDocumentsInput(BaseModel):
    case_ref: str
    checklist: list[DocumentRequirement]
    as_of: date = Field(description="The workflow's today, so replays judge expiry the same")
    reviews: dict[str, DocumentReview] = Field(
        default_factory=dict, description="Staff decisions on needs_review documents, by id"
    )


class DocumentJudgement(BaseModel):
    """What reading one document found: its verdict, with reasons for staff and the client."""

    document_id: str
    kind: DocumentKind
    verdict: str = Field(description="machine_verified | needs_review | rejected")
    reasons: list[str] = Field(default_factory=list, description="For staff")
    client_reasons: list[str] = Field(default_factory=list, description="For the client")


class VerificationResult(BaseModel):
    complete: bool
    accepted: list[DocumentRef] = Field(default_factory=list)
    problems: list[DocumentProblem] = Field(default_factory=list)
    judgements: list[DocumentJudgement] = Field(
        default_factory=list, description="One per document read (newest of each kind)"
    )
    needs_review: bool = Field(
        default=False,
        description="Some document waits for a person (not proven wrong, not machine-verified)",
    )
