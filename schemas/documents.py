"""Client documents: what the checklist asks for, what was uploaded, what verification found.

The workflow only ever sees references (ids, kinds, dates), never file bytes.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


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


class DocumentProblem(BaseModel):
    kind: DocumentKind
    problem: str = Field(description="missing | expired | too_old | no_expiry_date")
    detail: str


class VerifyDocumentsInput(BaseModel):
    case_ref: str
    checklist: list[DocumentRequirement]
    as_of: date = Field(description="The workflow's today, so replays judge expiry the same")


class VerificationResult(BaseModel):
    complete: bool
    accepted: list[DocumentRef] = Field(default_factory=list)
    problems: list[DocumentProblem] = Field(default_factory=list)
