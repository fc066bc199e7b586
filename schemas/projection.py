"""What the workflow tells the read model. One small payload per transition."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from schemas.case import PauseInterval, StageInterval, TaskState
from schemas.client import ClientProfile
from schemas.enums import CaseStatus, SlaState, Stage


class CasePatch(BaseModel):
    """Absolute values (never deltas), so applying a patch twice is harmless."""

    status: CaseStatus | None = None
    stage: Stage | None = None
    sla_state: SlaState | None = None
    priority: str | None = None
    playbook_version: str | None = None
    flags: list[str] | None = None
    ever_paused: bool | None = None
    closed_at: datetime | None = None
    closure_reason: str | None = None


class AuditEvent(BaseModel):
    key: str = Field(description="Unique per case; retries and replays reuse it.")
    kind: str
    actor: str = "system"
    detail: dict[str, Any] = Field(default_factory=dict)
    at: datetime | None = Field(
        default=None,
        description="When it happened in the workflow; unset: when its projection was taken "
        "(a busy outbox writes an event later than it happened, and merges projections).",
    )


class CaseSeed(BaseModel):
    """Enough to create the case row when the workflow was started outside the API (CLI, UI)."""

    client: ClientProfile
    requested_by: str


class Projection(BaseModel):
    """One atomic read-model write for a case."""

    case_ref: str
    seed: CaseSeed | None = None
    version: int = Field(description="Monotonic per case; older projections never win.")
    at: datetime
    case: CasePatch = Field(default_factory=CasePatch)
    intervals: list[StageInterval] = Field(default_factory=list)
    pauses: list[PauseInterval] = Field(default_factory=list)
    tasks: list[TaskState] = Field(default_factory=list)
    events: list[AuditEvent] = Field(default_factory=list)


class ProvisionAccountInput(BaseModel):
    case_ref: str
    at: datetime


class CloseAccountInput(BaseModel):
    case_ref: str
    at: datetime
    reason: str


class AccountRef(BaseModel):
    case_ref: str
    account_number: str
    status: str
    created: bool = Field(description="False when an earlier attempt already provisioned it.")
