"""``CaseSnapshot``: the answer of an engine case's ``state`` query.

It is the case's ``CaseState`` plus what is computed live at query time (SLA time left, what the
case waits for, which commands it takes now). The API adapts the frozen onboarding workflow's
answer to this shape too, so the console and portal read one shape for every case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from schemas.case_state import ElementState, EtaNow, PauseRecord, StageVisit, Vote


class SlaNow(BaseModel):
    """SLA of the current stage visit, computed at query time."""

    state: str = "on_track"  # on_track / warning / at_risk / breached / paused
    budget_seconds: float | None = None
    active_seconds: float = 0
    remaining_seconds: float | None = None
    due_at: datetime | None = None  # wall-clock due time if nothing stops the clock
    running: bool = True
    escalation_level: int = 0
    acknowledged_level: int = 0
    acknowledged_by: str | None = None


class StagePlan(BaseModel):
    """One stage of the pinned case type, for progress bars (console and portal)."""

    key: str
    title: str
    client_status: str | None = None
    owner_role: str
    sla_seconds: float | None = None
    access: list[str] = Field(default_factory=list)


class CaseSummary(BaseModel):
    """The ``summary`` query: where the case is and what it takes now, cheap enough to poll."""

    case_ref: str
    status: str
    stage: str
    awaiting: str | None = None
    sla_state: str = "on_track"
    allowed_actions: list[str] = Field(default_factory=list)


class CaseSnapshot(BaseModel):
    case_ref: str
    case_type: str
    case_type_version: str
    engine: str = Field(default="case", description="case | onboarding-v1 (frozen)")
    status: str
    stage: str
    stage_title: str = ""
    resolution: str | None = None
    priority: str = "normal"
    assignee: str | None = Field(default=None, description="Who is working the case")
    assignee_team: str | None = None
    assigned_at: datetime | None = None
    eta: EtaNow | None = Field(default=None, description="When the case should be done")
    awaiting: str | None = None
    flags: list[str] = Field(default_factory=list)
    fields: dict[str, Any] = Field(default_factory=dict)
    stages: list[StagePlan] = Field(default_factory=list)
    elements: list[ElementState] = Field(default_factory=list)
    history: list[StageVisit] = Field(default_factory=list)
    pauses: list[PauseRecord] = Field(default_factory=list)
    approvals: list[Vote] = Field(default_factory=list)
    approvals_required: int = 0
    sla: SlaNow | None = None
    paused_by: str | None = None
    access: list[str] = Field(default_factory=list, description="Roles that may act now")
    allowed_actions: list[str] = Field(
        default_factory=list, description="Update names the case accepts now"
    )
    reject_reasons: list[str] = Field(default_factory=list)
    closure_code: str | None = None
    closure_reason: str | None = None
    account_number: str | None = None
    proposal: str | None = Field(default=None, description="Open client proposal, if any")
    projection_version: int = Field(
        default=0, description="The last read-model version the case wrote (for reproject)"
    )
    requested_by: str | None = None
