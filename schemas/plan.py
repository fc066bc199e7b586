"""The declarative playbook and the per-case plan derived from it.

The playbook is what the operations team edits (``playbooks/onboarding.yaml``). At case start a
pure function (``workflows.routing.build_plan``) turns playbook + client profile into a
``CasePlan``, which is pinned in the case's history: editing the playbook changes new cases only.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.client import ClientProfile
from schemas.documents import DocumentRequirement
from schemas.enums import ClientTier, ClientType, Stage

_DURATION = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$")


def parse_duration(value: Any) -> Any:
    """Accept '24h', '1d 2h', '90m', '30s' (playbook style); anything else (ISO 8601 as pydantic
    writes it, seconds, timedeltas) is left to pydantic."""
    if isinstance(value, str) and not value.lstrip().upper().startswith(("P", "-P")):
        match = _DURATION.match(value)
        if not match or not any(match.groups()):
            raise ValueError(f"not a duration like '24h' or '90m': {value!r}")
        d, h, m, s = (int(g) if g else 0 for g in match.groups())
        return timedelta(days=d, hours=h, minutes=m, seconds=s)
    return value


class Gate(StrEnum):
    """What a human must do before a stage can finish (besides its tasks)."""

    NONE = "none"
    DOCUMENTS = "documents"  # client documents received (signal)
    APPROVAL = "approval"  # approve/reject decision (update with validator)
    SIGN_OFF = "sign_off"  # final reviewer signs off (update with validator)


class TaskKind(StrEnum):
    AUTO = "auto"  # done by an activity
    MANUAL = "manual"  # done by a person through the API


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    kind: TaskKind = TaskKind.MANUAL
    assignee_role: str | None = None


class EscalationLevel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    level: int = Field(ge=1)
    after_breach: timedelta = Field(description="Time after the breach at which this fires.")
    target: str = Field(description="Role notified, e.g. 'onboarding_lead'.")

    _parse = field_validator("after_breach", mode="before")(parse_duration)


class StageSpec(BaseModel):
    """One stage as the playbook declares it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Stage
    title: str
    sla: timedelta | None = Field(default=None, description="Budget of active time; None = none")
    owner_role: str
    gate: Gate = Gate.NONE
    warn_at: list[float] = Field(default_factory=lambda: [0.8])
    predictive: PredictiveAlert | None = None
    escalations: list[EscalationLevel] = Field(default_factory=list)
    sla_pauses_when_waiting_on_client: bool = True
    auto_approve_when_clear: bool = Field(
        default=False,
        description="Approval gate passes by itself when screening is clear, risk is not high "
        "and no manual task is open: the straight-through path.",
    )
    tasks: list[TaskSpec] = Field(default_factory=list)

    _parse = field_validator("sla", mode="before")(parse_duration)

    @field_validator("warn_at")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0 < v < 1 for v in value):
            raise ValueError("warning thresholds are fractions of the SLA, between 0 and 1")
        return sorted(set(value))


class PredictiveAlert(BaseModel):
    """'At risk' when, at ``at`` of the budget, fewer than ``min_tasks_done`` of tasks are done,
    or (with ``breach_probability``) when the breach model says the stage will likely breach."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float = Field(default=0.6, gt=0, lt=1)
    min_tasks_done: float = Field(default=0.4, gt=0, le=1)
    breach_probability: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Also at risk when the breach model (learned from history) gives at least "
        "this probability at ``at`` (None: the rule alone)",
    )


class RoutingCondition(BaseModel):
    """All given fields must hold. ``international`` compares country with ``home_country``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_type: list[ClientType] | None = None
    tier: list[ClientTier] | None = None
    international: bool | None = None
    country: list[str] | None = None


class AddStage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: StageSpec
    after: Stage


class AddTask(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Stage
    task: TaskSpec


class RoutingRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    when: RoutingCondition
    add_stages: list[AddStage] = Field(default_factory=list)
    add_tasks: list[AddTask] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list, description="e.g. enhanced_due_diligence")


class Resource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    url: str


class Messaging(BaseModel):
    """What client messages say about the product and who looks after the client."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product_name: str = "Business Account"
    relationship_manager_name: str = "Client Services"
    relationship_manager_email: str = "client-services@example.com"
    welcome_resources: list[Resource] = Field(
        default_factory=lambda: [Resource(title="Getting started", url="https://example.com/start")]
    )
    callback_due_after: timedelta = Field(default=timedelta(hours=4))

    _parse = field_validator("callback_due_after", mode="before")(parse_duration)


class Playbook(BaseModel):
    """The whole playbook file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    home_country: str = Field(min_length=2, max_length=2)
    stages: list[StageSpec]
    routing: list[RoutingRule] = Field(default_factory=list)
    requirement_checks: dict[str, list[TaskSpec]] = Field(
        default_factory=dict,
        description="Regulatory requirement code -> extra tasks in compliance review.",
    )
    requirement_checks_stage: Stage = Stage.COMPLIANCE_REVIEW
    document_checklists: dict[ClientType, list[DocumentRequirement]] = Field(
        default_factory=dict, description="What each client type must upload."
    )
    messaging: Messaging = Field(default_factory=Messaging)

    @model_validator(mode="after")
    def _stages_unique(self) -> Playbook:
        names = [s.stage for s in self.stages]
        if len(names) != len(set(names)):
            raise ValueError("each stage may appear once in the playbook")
        if not names or names[0] != Stage.ACKNOWLEDGEMENT:
            raise ValueError("the first stage must be acknowledgement")
        return self


class PlanCaseInput(BaseModel):
    """Input of the frozen workflow's ``plan_case`` activity."""

    client: ClientProfile


class CasePlan(BaseModel):
    """What this case will go through; fixed at case start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    playbook_version: str
    stages: list[StageSpec]
    flags: list[str] = Field(default_factory=list)
    applied_rules: list[str] = Field(default_factory=list)
    document_checklist: list[DocumentRequirement] = Field(default_factory=list)
    messaging: Messaging | None = None

    def spec(self, stage: Stage) -> StageSpec:
        for item in self.stages:
            if item.stage == stage:
                return item
        raise KeyError(stage)


StageSpec.model_rebuild()

__all__ = [
    "AddStage",
    "AddTask",
    "CasePlan",
    "EscalationLevel",
    "Gate",
    "Messaging",
    "PlanCaseInput",
    "Playbook",
    "PredictiveAlert",
    "RoutingCondition",
    "RoutingRule",
    "StageSpec",
    "TaskKind",
    "TaskSpec",
    "parse_duration",
]
