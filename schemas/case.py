"""Case-level models: workflow input/output, the query result and the API's views."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

from schemas.client import E164, ClientProfile, NewClientProfile
from schemas.enums import CaseStatus, ClientTier, ClientType, Decision, SlaState, Stage
from schemas.text import Actor, Key, Line, Text

CASE_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{2,63}$"
KEY_PATTERN = r"^[a-z][a-z0-9_]{0,59}$"  # case type names, stage keys, element keys
DEFAULT_CASE_TYPE = "client_onboarding"
CLOSED_STATUSES = frozenset({"completed", "rejected", "cancelled", "closed"})
"""Statuses that take no more commands: the frozen workflow's three, and the engine's closed
(a *resolved* engine case can still be reopened, so it is not among them)."""

MAX_DATA_TEXT = 10_000
"""No case type field takes a longer string (``FieldDef.max_length`` is at most this)."""
DataValue = Annotated[str, StringConstraints(max_length=MAX_DATA_TEXT)] | int | float | bool | None
CaseData = Annotated[dict[str, DataValue], Field(max_length=50)]


def status_is_closed(status: str) -> bool:
    """True for a case that takes no more commands (frozen or engine)."""
    return status in CLOSED_STATUSES


class StatusText(str):
    """A case status as plain text (the frozen workflow's ``CaseStatus`` values or the engine's
    ``EngineStatus`` values), with the one question everybody asks of it."""

    __slots__ = ()

    @property
    def is_closed(self) -> bool:
        return status_is_closed(self)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls, core_schema.str_schema(max_length=32)
        )


def workflow_id_for(case_ref: str) -> str:
    """Readable workflow ids, so operators can find a case in the Temporal UI by its ref."""
    return f"onboarding-{case_ref}"


class StartCaseRequest(BaseModel):
    """Body of ``POST /cases``."""

    model_config = ConfigDict(extra="forbid")

    reference: str | None = Field(
        default=None,
        pattern=CASE_REF_PATTERN,
        description="Your own reference for the case; makes the request idempotent.",
    )
    client: NewClientProfile
    case_type: str = Field(
        default=DEFAULT_CASE_TYPE,
        pattern=KEY_PATTERN,
        description="Which case type to open (see GET /case-types).",
    )
    data: CaseData = Field(
        default_factory=dict,
        description="The case type's own fields (see its `fields`), validated against it.",
    )


class CaseInput(BaseModel):
    """Workflow input. One model so fields can be added without breaking running cases."""

    case_ref: str
    client: ClientProfile
    requested_by: str = "api"


class StageInterval(BaseModel):
    """One visit of a stage (a stage can be visited again after a send-back)."""

    seq: int
    stage: Stage
    entered_at: datetime
    exited_at: datetime | None = None
    outcome: str | None = None  # completed / sent_back / cancelled / rejected / …
    sla_outcome: str | None = None  # met / warned / breached (set when the stage closes)
    active_seconds: float | None = None
    paused_seconds: float | None = None
    escalations: int = 0
    sla_budget_seconds: float | None = None


class PauseInterval(BaseModel):
    """A manual-intervention pause: automation halted and the SLA clock stopped."""

    seq: int
    stage: Stage
    paused_at: datetime
    paused_by: str
    reason: str
    resumed_at: datetime | None = None
    resumed_by: str | None = None
    resume_reason: str | None = None


class Approval(BaseModel):
    reviewer: str
    decision: str
    reason: str | None = None
    at: datetime


class TaskState(BaseModel):
    key: str
    title: str
    stage: Stage
    kind: str
    assignee_role: str | None = None
    done: bool = False
    done_by: str | None = None
    done_at: datetime | None = None


class SlaView(BaseModel):
    """SLA of the current stage, as the workflow sees it right now."""

    state: SlaState
    budget_seconds: float | None = None
    active_seconds: float = 0
    remaining_seconds: float | None = None
    due_at: datetime | None = None  # wall-clock due time if nothing pauses the clock
    escalation_level: int = 0


class CaseState(BaseModel):
    """Result of the ``state`` query: the workflow's own view of the case."""

    case_ref: str
    status: CaseStatus
    stage: Stage
    awaiting: str | None = Field(default=None, description="What the case waits for now.")
    playbook_version: str | None = None
    flags: list[str] = Field(default_factory=list)
    stages_planned: list[Stage] = Field(default_factory=list)
    history: list[StageInterval] = Field(default_factory=list)
    tasks: list[TaskState] = Field(default_factory=list)
    sla: SlaView | None = None
    priority: str = "normal"
    paused_by: str | None = None
    ever_paused: bool = False
    pauses: list[PauseInterval] = Field(default_factory=list)
    approvals: list[Approval] = Field(default_factory=list)
    approvals_required: int = 1
    closure_reason: str | None = None
    account_number: str | None = None


class CaseOutcome(BaseModel):
    """Workflow result."""

    case_ref: str
    status: CaseStatus
    closure_reason: str | None = None
    duration: timedelta


class StageVisitView(BaseModel):
    """One visit of a stage in the read model (any case type's stage keys)."""

    seq: int
    stage: str
    entered_at: datetime
    exited_at: datetime | None = None
    outcome: str | None = None
    sla_outcome: str | None = None
    active_seconds: float | None = None
    paused_seconds: float | None = None
    escalations: int = 0
    sla_budget_seconds: float | None = None


class PauseView(BaseModel):
    """A pause in the read model (any case type's stage keys)."""

    seq: int
    stage: str
    paused_at: datetime
    paused_by: str
    reason: str
    resumed_at: datetime | None = None
    resumed_by: str | None = None
    resume_reason: str | None = None


class ClientSummary(BaseModel):
    name: str
    client_type: ClientType
    tier: ClientTier
    country: str


class EtaView(BaseModel):
    """The case's completion estimate: ``at`` is the p50 (as likely earlier as later); ``basis``
    ``model`` (learned from past cases) or ``budgets`` (the sum of the route's SLAs: too little
    history, or the case is behind its estimate)."""

    at: datetime
    p10: datetime | None = None
    p90: datetime | None = None
    basis: str


class CaseView(BaseModel):
    """``GET /cases/{ref}``: the read model, plus links for people."""

    reference: str
    status: StatusText = Field(
        description="draft, open, waiting_on_client, paused, resolved, "
        "completed, rejected, cancelled or closed"
    )
    stage: str
    case_type: str = DEFAULT_CASE_TYPE
    case_type_version: str | None = None
    engine: str = "onboarding-v1"
    resolution: str | None = None
    client: ClientSummary
    priority: str
    sla_state: SlaState | None = None
    playbook_version: str | None = None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    closure_reason: str | None = None
    ever_paused: bool = False
    eta: EtaView | None = Field(default=None, description="When the case should be done")
    workflow_id: str
    temporal_ui_url: str
    stages: list[StageVisitView] = Field(default_factory=list)
    pauses: list[PauseView] = Field(default_factory=list)

    @property
    def is_closed(self) -> bool:
        return self.status.is_closed


class CaseListItem(BaseModel):
    reference: str
    status: StatusText
    stage: str
    case_type: str = DEFAULT_CASE_TYPE
    client_name: str
    client_type: ClientType
    tier: ClientTier
    sla_state: SlaState | None = None
    created_at: datetime
    updated_at: datetime


class CasePage(BaseModel):
    items: list[CaseListItem]
    total: int
    limit: int
    offset: int


# ------------------------------------------------------------------ command bodies (HTTP)
# Who acts is never taken from a body for an engine case: the API sets the command's actor
# and role from the authenticated caller. ``actor``/``reviewer`` are still accepted (and used
# for cases of the frozen onboarding workflow, as before) so existing clients keep working.
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PauseBody(_Body):
    reason: Text
    actor: Actor | None = None


class ResumeBody(_Body):
    reason: Text = "resumed"
    actor: Actor | None = None


class DecisionBody(_Body):
    """``POST /cases/{ref}/decision``: approve or reject the current approval."""

    decision: Literal["approve", "reject"]
    element: Key | None = None
    reason_code: Key | None = Field(default=None, description="From the case type's list")
    note: Text | None = None

    @model_validator(mode="after")
    def _reject_needs_reason(self) -> DecisionBody:
        if self.decision == "reject" and (self.reason_code is None or self.note is None):
            raise ValueError("a rejection needs a reason_code and a note")
        return self


class ComplianceDecisionBody(_Body):
    decision: Decision
    reviewer: Actor | None = None
    reason: Text | None = None


class FinalReviewBody(_Body):
    reviewer: Actor | None = None
    note: Text | None = None


class TaskCompletionBody(_Body):
    actor: Actor | None = None
    note: Text | None = None
    outcome: Key | None = Field(default=None, description="Callback tasks: what happened")


class SendBackBody(_Body):
    to_stage: Key
    reason: Text
    actor: Actor | None = None


class CancelBody(_Body):
    closure_code: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{2,40}$")]
    reason: Text | None = None
    actor: Actor | None = None


class DocumentsReceivedBody(_Body):
    actor: Actor | None = None
    document_ids: list[Line] = Field(default_factory=list, max_length=50)
    note: Text | None = None
    waive_verification: bool = Field(
        default=False,
        description="Case manager accepts the documents as seen (e.g. originals at a branch). "
        "Needs a note; audited.",
    )

    @model_validator(mode="after")
    def _waiver_needs_a_note(self) -> DocumentsReceivedBody:
        if self.waive_verification and not self.note:
            raise ValueError("a waiver needs a note saying why")
        return self


class SkipBody(_Body):
    reason: Text


class WaiveBody(_Body):
    note: Text
    element: Key | None = None


class ReviewBody(_Body):
    """``POST /cases/{ref}/documents/{doc_id}/review``: settle a document the machine sent to a
    person. A rejection's note is what the client reads, so it is required."""

    decision: Literal["accept", "reject"]
    note: Text | None = None
    element: Key | None = None

    @model_validator(mode="after")
    def _reject_needs_note(self) -> ReviewBody:
        if self.decision == "reject" and not self.note:
            raise ValueError("a rejection needs a note: it tells the client what to fix")
        return self


class AcknowledgeBody(_Body):
    """``POST /cases/{ref}/escalation/acknowledge``: I have this escalated case in hand."""

    note: Text | None = None


class ReopenBody(_Body):
    to_stage: Key | None = Field(default=None, description="Default: the last stage")
    reason: Text


class ProposalBody(_Body):
    accept: bool
    reason: Text | None = None

    @model_validator(mode="after")
    def _reject_needs_reason(self) -> ProposalBody:
        if not self.accept and self.reason is None:
            raise ValueError("tell us why you do not accept, so we can put it right")
        return self


class MessageBody(_Body):
    text: Text


class FeedbackBody(_Body):
    csat: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    comment: Text | None = None

    @model_validator(mode="after")
    def _something(self) -> FeedbackBody:
        if self.csat is None and self.nps is None:
            raise ValueError("give a csat or an nps score")
        return self


class AssignmentBody(_Body):
    """``POST /cases/{ref}/assignment``: take, assign, reassign or release work on a case.

    ``take`` gives it to you (a console user). Otherwise ``assignee`` names a console user;
    leave it out to put the work back in the team queue. Moving work someone holds needs a
    ``reason``. ``element`` picks a step of the current stage; without it, the case itself.
    """

    element: Key | None = None
    assignee: Actor | None = None
    take: bool = False
    reason: Text | None = None

    @model_validator(mode="after")
    def _one_target(self) -> AssignmentBody:
        if self.take and self.assignee is not None:
            raise ValueError("give either take or an assignee, not both")
        return self


class NewContact(_Body):
    """``POST /cases/{ref}/contacts``: someone else at the client who hears of the case.

    ``milestones`` default to those the case type gives the ``role`` (``contact_roles``).
    """

    name: Line
    role: Key
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=16, description="E.164")
    milestones: list[Key] | None = Field(default=None, max_length=30)

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is not None and not E164.match(value):
            raise ValueError("phone must be E.164, like +447700900123")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> NewContact:
        if self.email is None and self.phone is None:
            raise ValueError("give an email or a phone number")
        return self


class ContactView(BaseModel):
    id: int
    name: str
    role: str
    email: str | None
    phone: str | None
    milestones: list[str]
    created_at: datetime
    created_by: str
