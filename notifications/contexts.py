"""Validated inputs for each notification template.

Templates render with ``StrictUndefined`` and these models forbid unknown
fields, so a missing, misspelt or wrong-typed value fails loudly when the
context is built (in tests, or when the outbox row is written) instead of
producing a half-empty message in a client's inbox.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl, field_validator

from notifications.milestones import Milestone

ShortText = Annotated[str, Field(min_length=1, max_length=200)]
"""One line of human text (a name, a document, a next step)."""

CaseRef = Annotated[
    str, Field(min_length=3, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-/.]*$")
]
"""Case reference as shown to humans, e.g. ``ONB-2025-000123``."""

OneLine = Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[^\r\n]+$")]
"""A headline: one line, short enough for a subject and an SMS."""

CaseTitle = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[^\r\n]+$")]
"""The case type as people call it, e.g. ``Order approval``."""

Paragraph = Annotated[str, Field(min_length=1, max_length=2000)]
"""A paragraph of human text; line breaks are kept (``<br>`` in HTML)."""

LongText = Annotated[str, Field(min_length=1, max_length=4000)]
"""Several paragraphs separated by blank lines (a proposal, say)."""

Role = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[^\r\n]+$")]
"""A staff role as named in a playbook and in ``STAFF_DIRECTORY`` (``compliance_lead``)."""


class _Strict(BaseModel):
    """Base config: reject unknown fields, strip stray whitespace, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _check_portal_url(value: HttpUrl | None) -> HttpUrl | None:
    """Keep links short enough to fit an SMS next to the case reference."""
    if value is not None and len(str(value)) > 200:
        raise ValueError("portal_url must be at most 200 characters")
    return value


class MessageContext(_Strict):
    """What every notification context has: the case it is about.

    The onboarding milestones build on ``NotificationContext``; the generic staff
    notices and the proposal carry only the fields their templates show.
    """

    case_ref: CaseRef


class NotificationContext(MessageContext):
    """Fields every onboarding notification (client or staff) needs."""

    client_name: ShortText
    status: ShortText = Field(description="Where the case stands, in plain words.")
    next_steps: list[ShortText] = Field(min_length=1, max_length=10)
    estimated_completion: AwareDatetime | None
    portal_url: HttpUrl | None = Field(default=None, description="Deep link to the case.")

    @field_validator("portal_url")
    @classmethod
    def _bounded_url(cls, value: HttpUrl | None) -> HttpUrl | None:
        """Keep links short enough to fit an SMS next to the case reference."""
        return _check_portal_url(value)


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
    team: Role | None = Field(
        default=None, description="To one person: their role (their team's address if need be)"
    )


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


# --------------------------------------------------------------------------- generic
# Milestones any case type can send. ``case_ref`` is the case's own reference
# (``ORD-2025-000042``); ``case_title`` is the case type's name for people.


class CaseUpdateContext(NotificationContext):
    """A milestone of any case type, told in the case type's own words.

    ``next_steps`` may be empty here (nothing is needed from the client); the
    message then has no next-steps section.
    """

    case_title: CaseTitle
    heading: OneLine = Field(description="One line: the news, e.g. 'Your order was approved'.")
    lines: list[Paragraph] = Field(min_length=1, max_length=20)
    next_steps: list[ShortText] = Field(max_length=10)


class ProposalContext(MessageContext):
    """We propose an outcome; the client accepts or rejects it in the portal.

    The notify activity adds ``portal_url`` (a fresh portal link) when it can;
    without one the message tells the client to sign in to the portal.
    """

    client_name: ShortText
    case_title: CaseTitle
    proposal: LongText
    respond_by: AwareDatetime | None
    portal_url: HttpUrl | None = Field(default=None, description="Deep link to the case.")

    @field_validator("portal_url")
    @classmethod
    def _bounded_url(cls, value: HttpUrl | None) -> HttpUrl | None:
        return _check_portal_url(value)


class TaskNoticeContext(MessageContext):
    """Common facts of the staff notices about one task of one case."""

    task_title: ShortText
    stage: ShortText
    assignee_role: Role
    due_at: AwareDatetime
    case_url: HttpUrl | None = Field(default=None, description="Link to the case for staff.")


class TaskReminderContext(TaskNoticeContext):
    """Part of a task's time has passed (``fraction`` 0.5: half of it)."""

    fraction: float = Field(gt=0, lt=1)


class TaskOverdueContext(TaskNoticeContext):
    """A task is past due; ``escalated_to`` names the role it went to, if any."""

    escalated_to: Role | None


class CaseReopenedContext(MessageContext):
    """Someone sent a case back to an earlier stage (or reopened a closed one)."""

    stage: ShortText = Field(description="The stage the case is back in.")
    reason: Paragraph
    by: ShortText = Field(description="Who reopened it (a person or a role).")
    case_url: HttpUrl | None = Field(default=None, description="Link to the case for staff.")


class WorkAssignedContext(MessageContext):
    """Work on a case moved to or from ``person`` (taken, assigned, reassigned, rebalanced)."""

    person: ShortText = Field(description="Who this notice is for (a console username).")
    team: Role | None = Field(default=None, description="That person's role.")
    title: ShortText = Field(description="The case or the step that moved.")
    stage: ShortText
    by: ShortText = Field(description="Who moved it (a person, or rebalancing).")
    to: ShortText | None = Field(default=None, description="None: back in the team queue.")
    previous: ShortText | None = None
    reason: Paragraph | None = None
    via: Literal["person", "rebalancing"] = "person"
    case_url: HttpUrl | None = Field(default=None, description="Link to the case for staff.")

    @property
    def is_theirs(self) -> bool:
        return self.to == self.person


class ClientRepliedContext(MessageContext):
    """The client wrote on the case (a portal message, an emailed or texted reply)."""

    stage: ShortText
    excerpt: Paragraph = Field(description="The start of what the client wrote.")
    channel: Literal["portal", "email", "sms"] = "portal"
    reopened: bool = Field(default=False, description="The message reopened a resolved case.")
    person: ShortText | None = Field(default=None, description="The case's holder, if any.")
    team: Role | None = None
    case_url: HttpUrl | None = Field(default=None, description="Link to the case for staff.")


CONTEXT_MODELS: dict[Milestone, type[MessageContext]] = {
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
    Milestone.CASE_UPDATE: CaseUpdateContext,
    Milestone.PROPOSAL: ProposalContext,
    Milestone.TASK_REMINDER: TaskReminderContext,
    Milestone.TASK_OVERDUE: TaskOverdueContext,
    Milestone.CASE_REOPENED: CaseReopenedContext,
    Milestone.WORK_ASSIGNED: WorkAssignedContext,
    Milestone.CLIENT_REPLIED: ClientRepliedContext,
}
"""Which context model validates which milestone's template."""


def context_model(milestone: Milestone | str) -> type[MessageContext]:
    """Look up the context model, accepting the stored string form too."""
    return CONTEXT_MODELS[Milestone(milestone)]
