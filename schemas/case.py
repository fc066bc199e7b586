"""Case-level models: workflow input/output, the query result and the API's views."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from schemas.client import ClientProfile
from schemas.enums import CaseStatus, ClientTier, ClientType, SlaState, Stage

CASE_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{2,63}$"


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
    client: ClientProfile


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


class ClientSummary(BaseModel):
    name: str
    client_type: ClientType
    tier: ClientTier
    country: str


class CaseView(BaseModel):
    """``GET /cases/{ref}``: the read model, plus links for people."""

    reference: str
    status: CaseStatus
    stage: Stage
    client: ClientSummary
    priority: str
    sla_state: SlaState | None = None
    playbook_version: str | None = None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    closure_reason: str | None = None
    ever_paused: bool = False
    workflow_id: str
    temporal_ui_url: str
    stages: list[StageInterval] = Field(default_factory=list)
    pauses: list[PauseInterval] = Field(default_factory=list)


class CaseListItem(BaseModel):
    reference: str
    status: CaseStatus
    stage: Stage
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
