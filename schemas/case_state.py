"""One case's state in the engine: plain data, serialisable, nothing else holds case data.

The engine's workflow owns exactly one ``CaseState``. Elements, the SLA timer and the outbox
read and write it; the ``state`` query answers with it (plus what is computed live at query
time, see ``CaseSnapshot``). Dataclasses, not models: it is mutated in place by workflow code
and serialised by the pydantic data converter only when it leaves the workflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from schemas.documents import DocumentReview


class EngineStatus(StrEnum):
    """Lifecycle of an engine case."""

    DRAFT = "draft"
    OPEN = "open"
    WAITING_ON_CLIENT = "waiting_on_client"
    PAUSED = "paused"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (EngineStatus.CLOSED, EngineStatus.CANCELLED)


class ElementStatus(StrEnum):
    PENDING = "pending"  # not reached yet in this visit
    ACTIVE = "active"  # waiting for people, the client or an activity
    DONE = "done"
    SKIPPED = "skipped"  # optional, skipped by a case manager with a reason
    NOT_APPLICABLE = "not_applicable"  # its `when` did not hold
    FAILED = "failed"


@dataclass
class Vote:
    actor: str
    decision: str  # approve | reject
    at: datetime
    reason_code: str | None = None
    note: str | None = None


@dataclass
class ElementState:
    """One element of the current stage visit."""

    key: str
    kind: str
    stage: str
    title: str
    status: ElementStatus = ElementStatus.PENDING
    assignee_role: str | None = None  # the team (role) whose queue the element is in
    roles: list[str] = field(default_factory=list)  # every role that may act on it
    assignee: str | None = None  # the person holding it (a console username)
    assignee_team: str | None = None  # that person's role
    assigned_at: datetime | None = None
    opened_at: datetime | None = None
    due_at: datetime | None = None
    finished_at: datetime | None = None
    done_by: str | None = None
    note: str | None = None
    outcome: str | None = None  # callback outcome, acceptance, automation summary, skip reason
    required: int = 0  # approvals needed
    votes: list[Vote] = field(default_factory=list)
    ticked: dict[str, str] = field(default_factory=dict)  # checklist item -> who ticked it
    reminders_sent: int = 0
    overdue: bool = False
    uploads_seen: int = 0  # documents: uploads already verified
    problems: list[str] = field(default_factory=list)  # documents: what is still wrong
    in_review: list[str] = field(default_factory=list)  # documents: ids waiting for a person
    reviews: dict[str, DocumentReview] = field(default_factory=dict)  # documents: decided
    child_workflow_id: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in (
            ElementStatus.DONE,
            ElementStatus.SKIPPED,
            ElementStatus.NOT_APPLICABLE,
            ElementStatus.FAILED,
        )


@dataclass
class StageVisit:
    seq: int
    stage: str
    entered_at: datetime
    sla_budget_seconds: float | None = None
    exited_at: datetime | None = None
    outcome: str | None = None  # completed / sent_back / reopened / cancelled / resolved
    sla_outcome: str | None = None
    active_seconds: float | None = None
    paused_seconds: float | None = None
    escalations: int = 0


@dataclass
class PauseRecord:
    seq: int
    stage: str
    paused_at: datetime
    paused_by: str
    reason: str
    resumed_at: datetime | None = None
    resumed_by: str | None = None
    resume_reason: str | None = None


@dataclass
class SlaTimerState:
    """The SLA clock of the current stage visit (see ``workflows.sla``)."""

    started_at: datetime
    budget_seconds: float | None
    active_before_seconds: float = 0.0
    running_since: datetime | None = None
    paused_seconds: float = 0.0
    stopped_since: datetime | None = None
    fired: list[str] = field(default_factory=list)
    state: str = "on_track"
    escalation_level: int = 0
    escalations: int = 0
    acknowledged_level: int = 0  # the escalation level someone took ownership of
    acknowledged_by: str | None = None


@dataclass
class EtaNow:
    """The case's completion estimate: learned from history (``model``) or the sum of its
    route's SLA budgets (``budgets``); p10/p90 bracket it."""

    p50: datetime
    p10: datetime
    p90: datetime
    basis: str
    model_version: str | None = None
    estimated_at: datetime | None = None


@dataclass
class CaseState:
    case_ref: str
    case_type: str
    case_type_version: str
    workflow_id: str
    status: EngineStatus = EngineStatus.DRAFT
    stage: str = ""
    priority: str = "normal"
    fields: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    elements: list[ElementState] = field(default_factory=list)  # current visit, in order
    history: list[StageVisit] = field(default_factory=list)
    pauses: list[PauseRecord] = field(default_factory=list)
    sla: SlaTimerState | None = None
    paused_by: str | None = None
    assignee: str | None = None  # the person working the case (a console username)
    assignee_team: str | None = None  # that person's role
    assigned_at: datetime | None = None
    eta: EtaNow | None = None  # when the case should be done (estimate_eta), newest first
    resolution: str | None = None  # completed / rejected / … once resolved
    resolved_at: datetime | None = None
    closure_code: str | None = None
    closure_reason: str | None = None
    closed_at: datetime | None = None
    reopened: int = 0
    parent_workflow_id: str | None = None
    counters: dict[str, int] = field(default_factory=dict)  # stable keys for events/messages

    def element(self, key: str) -> ElementState | None:
        for item in self.elements:
            if item.key == key:
                return item
        return None

    def next_number(self, key: str) -> int:
        """1, 2, 3… per key: stable audit/outbox keys that replays and send-backs respect."""
        self.counters[key] = self.counters.get(key, 0) + 1
        return self.counters[key]
