"""Validated inputs for each notification template.

Templates render with ``StrictUndefined`` and these models forbid unknown
fields, so a missing, misspelt or wrong-typed value fails loudly when the
context is built (in tests, or when the outbox row is written) instead of
producing a half-empty message in a client's inbox.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl, field_validator

from notifications.milestones import Milestone

ShortText = Annotated[str, Field(min_length=1, max_length=200)]
"""One line of human text (a name, a document, a next step)."""

CaseRef = Annotated[
    str, Field(min_length=3, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-/.]*$")
]
"""Case reference as shown to humans, e.g. ``ONB-2025-000123``."""


class _Strict(BaseModel):
    """Base config: reject unknown fields, strip stray whitespace, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class NotificationContext(_Strict):
    """Fields every notification (client or staff) needs."""

    case_ref: CaseRef
    client_name: ShortText
    status: ShortText = Field(description="Where the case stands, in plain words.")
    next_steps: list[ShortText] = Field(min_length=1, max_length=10)
    estimated_completion: AwareDatetime | None
    portal_url: HttpUrl | None = Field(default=None, description="Deep link to the case.")

    @field_validator("portal_url")
    @classmethod
    def _bounded_url(cls, value: HttpUrl | None) -> HttpUrl | None:
        """Keep links short enough to fit an SMS next to the case reference."""
        if value is not None and len(str(value)) > 200:
            raise ValueError("portal_url must be at most 200 characters")
        return value


# --------------------------------------------------------------------------- client


class CaseCreatedContext(NotificationContext):
    """The case was opened; tell the client what we will need from them."""

    product_name: ShortText
    required_documents: list[ShortText] = Field(min_length=1)


class DocumentsReceivedContext(NotificationContext):
    """Confirms receipt so clients stop re-sending the same files."""

    documents_received: list[ShortText] = Field(min_length=1)
    documents_outstanding: list[ShortText]


class NeededDocument(_Strict):
    """A document the client must (re)send, and why."""

    name: ShortText
    reason: ShortText


class DocumentsNeededContext(NotificationContext):
    """Asks the client for missing or rejected documents."""

    documents_needed: list[NeededDocument] = Field(min_length=1)
    respond_by: AwareDatetime | None


class ComplianceApprovedContext(NotificationContext):
    """KYC/AML review passed; the case can move to provisioning."""

    approved_at: AwareDatetime
    checks_completed: list[ShortText] = Field(min_length=1)


class AccountProvisioningStartedContext(NotificationContext):
    """Accounts are being set up; nothing is needed from the client for now."""

    accounts: list[ShortText] = Field(min_length=1)
    started_at: AwareDatetime


class SetupCompletedContext(NotificationContext):
    """The account is live. Only the last four digits ever leave the system."""

    account_name: ShortText
    account_number_last4: Annotated[str, Field(pattern=r"^\d{4}$")]
    completed_at: AwareDatetime


class WelcomeResource(_Strict):
    """A link in the welcome package (guides, app downloads, fee schedule)."""

    title: ShortText
    url: HttpUrl


class WelcomePackageContext(NotificationContext):
    """The final hand-over to the relationship manager."""

    relationship_manager_name: ShortText
    relationship_manager_email: Annotated[
        str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    ]
    resources: list[WelcomeResource] = Field(min_length=1)


# --------------------------------------------------------------------------- staff


class SlaNoticeContext(NotificationContext):
    """Common SLA facts for the staff notices about one stage of one case."""

    stage: ShortText
    stage_started_at: AwareDatetime
    sla_due_at: AwareDatetime
    assignee: ShortText | None
    case_url: HttpUrl | None = None


class SlaWarningContext(SlaNoticeContext):
    """A stage has used most of its SLA budget."""

    time_remaining: timedelta = Field(ge=timedelta(0))


class SlaAtRiskContext(SlaNoticeContext):
    """A stage will probably miss its SLA for a known reason."""

    time_remaining: timedelta = Field(ge=timedelta(0))
    risk_reason: ShortText


class SlaBreachedContext(SlaNoticeContext):
    """A stage is past its SLA."""

    overdue_by: timedelta = Field(gt=timedelta(0))


class SlaEscalatedContext(SlaNoticeContext):
    """A breached stage was escalated up the chain."""

    overdue_by: timedelta = Field(gt=timedelta(0))
    escalated_to: ShortText
    escalation_level: int = Field(ge=1, le=5)


CONTEXT_MODELS: dict[Milestone, type[NotificationContext]] = {
    Milestone.CASE_CREATED: CaseCreatedContext,
    Milestone.DOCUMENTS_RECEIVED: DocumentsReceivedContext,
    Milestone.COMPLIANCE_APPROVED: ComplianceApprovedContext,
    Milestone.ACCOUNT_PROVISIONING_STARTED: AccountProvisioningStartedContext,
    Milestone.SETUP_COMPLETED: SetupCompletedContext,
    Milestone.WELCOME_PACKAGE: WelcomePackageContext,
    Milestone.DOCUMENTS_NEEDED: DocumentsNeededContext,
    Milestone.SLA_WARNING: SlaWarningContext,
    Milestone.SLA_AT_RISK: SlaAtRiskContext,
    Milestone.SLA_BREACHED: SlaBreachedContext,
    Milestone.SLA_ESCALATED: SlaEscalatedContext,
}
"""Which context model validates which milestone's template."""


def context_model(milestone: Milestone | str) -> type[NotificationContext]:
    """Look up the context model, accepting the stored string form too."""
    return CONTEXT_MODELS[Milestone(milestone)]
