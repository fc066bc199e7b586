"""The engine's contract with its activities: names plus one input and one output model each.

Workflows and the API import this module (and ``schemas``), never an activity implementation:
the worker binds these names to code (``workers/main.py``). A new field with a default is a
compatible change; renaming an activity is not.
"""

from __future__ import annotations

import base64
import json
import zlib
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from schemas.calendar import PinnedCalendar
from schemas.case_state import CaseState, ElementState, PauseRecord, StageVisit
from schemas.casetype import CaseType
from schemas.client import ClientProfile
from schemas.documents import DocumentRequirement, DocumentReview, VerificationResult
from schemas.notifications import NotifyInput
from schemas.projection import AuditEvent
from schemas.webhooks import WebhookEvent

# ------------------------------------------------------------------ workflow types and queues
CASE_WORKFLOW = "CaseWorkflow"  # the engine
FROZEN_ONBOARDING_WORKFLOW = "OnboardingCaseWorkflow"  # pre-engine cases, kept for replay

# ------------------------------------------------------------------ activity names
PROJECT_CASE = "engine_project_case"  # local activity: read-model write, dead-letters data errors
SYNC_CASE = "engine_sync_case"  # projection (optional) + outbox messages + webhooks
RUN_AUTOMATION = "engine_run_automation"  # a named automation from the worker's registry
VERIFY_DOCUMENTS = "verify_documents"  # shared with the frozen workflow

# Automations a case type may name. The worker registers a handler for each; a case type that
# names any other fails validation at load, not mid-case.
AUTOMATIONS: dict[str, str] = {
    "screening": "Sanctions/PEP screening plus risk score (writes decision, risk_level, score)",
    "provision_account": "Open the account (writes account_number)",
    "close_account": "Close a provisioned account (compensation)",
    "check_stock": "Check an order's items are available (writes available)",
    "issue_refund": "Refund a return (writes refund_id, amount)",
    "create_exchange": "Create an exchange order (writes exchange_order_ref)",
    "record": "Record the input in the audit trail and succeed (demos, tests)",
    "record_alert_outcome": "Mark a sanctions alert cleared or escalated, with who and why",
    "escalate_client_case": "Put the client's case on hold for an escalated sanctions alert "
    "(writes client_case_paused)",
}


# Counters and flags of the projected dataclasses whose default is 0 / False.
_ZERO_DEFAULTS = frozenset(
    {"required", "reminders_sent", "overdue", "uploads_seen", "escalations", "rebuild"}
)


def _lean(value: Any) -> Any:
    """Drop None, empty lists and empty dicts, recursively, and the zero counters above: every
    field left out has that as its default, and the payload is paid for in every case's
    history."""
    if isinstance(value, dict):
        return {
            k: _lean(v)
            for k, v in value.items()
            if v is not None
            and v != []
            and v != {}
            and not (k in _ZERO_DEFAULTS and v in (0, False) and not isinstance(v, float))
        }
    if isinstance(value, list):
        return [_lean(v) for v in value]
    return value


class _Lean(BaseModel):
    @model_serializer(mode="wrap")
    def _drop_empty(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _lean(handler(self))


def _pack(case_type: CaseType) -> str:
    """A case type as it travels in history: zlib-compressed JSON, base64 (a quarter of the
    size: the pinned type is the largest part of every case's history)."""
    raw = case_type.model_dump_json().encode()
    return PACKED + base64.b64encode(zlib.compress(raw, 9)).decode()


def _unpack(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(PACKED):
        return json.loads(zlib.decompress(base64.b64decode(value[len(PACKED) :])))
    return value  # a CaseType, or a plain JSON object


PACKED = "zlib+b64:"
DEFAULT_HISTORY_EVENT_LIMIT = 10_000
"""Temporal warns at 10,240 events and fails a run at 51,200: roll over well before."""
PinnedCaseType = Annotated[
    CaseType, BeforeValidator(_unpack), PlainSerializer(_pack, when_used="json")
]


class CaseCarry(BaseModel):
    """What a case carries into its next run (continue-as-new): the whole ``CaseState`` (SLA
    clock, open elements and their votes, ticks and timers included) and the search
    attributes already published. Everything else is rebuilt from these and the input."""

    state: CaseState
    published: dict[str, str] = Field(default_factory=dict)
    written: CasePatchV2 | None = Field(
        default=None, description="The case row's columns as last written (no rewrite needed)"
    )
    runs: int = Field(default=1, description="Runs before this one (1 on the first carry)")


class EngineCaseInput(BaseModel):
    """Input of ``CaseWorkflow``: the case type is pinned here, so edits change new cases only.

    ``subprocess_types`` pins the case types its subprocess elements start, for the same reason.
    Both travel packed (``PinnedCaseType``); in Python they are plain ``CaseType`` models.
    """

    case_ref: str
    workflow_id: str
    case_type: PinnedCaseType
    client: ClientProfile
    data: dict[str, Any] = Field(default_factory=dict)
    requested_by: str = "api"
    parent_workflow_id: str | None = None
    subprocess_types: dict[str, PinnedCaseType] = Field(default_factory=dict)
    calendars: dict[str, PinnedCalendar] = Field(
        default_factory=dict,
        description="The business calendars its stages (and subprocesses) count SLAs in, "
        "resolved when the case started",
    )
    row_exists: bool = Field(
        default=False,
        description="The API inserted the case row; else the first projection creates it",
    )
    continue_as_new_after_events: int = Field(
        default=DEFAULT_HISTORY_EVENT_LIMIT,
        ge=50,
        description="A run whose history reaches this many events continues as new at its "
        "next quiet point (sooner when the server suggests it)",
    )
    carried: CaseCarry | None = Field(
        default=None,
        description="Set on a continued run: the case exactly as the previous run left it",
    )


class EngineSeed(BaseModel):
    """Enough to create the case row when nobody inserted it first (a subprocess child, or a
    case started from the Temporal CLI). Sent with a case's first projection."""

    client: ClientProfile
    case_type: str
    case_type_version: str
    workflow_id: str
    requested_by: str
    data: dict[str, Any] = Field(default_factory=dict)
    first_stage: str
    access_roles: list[str] = Field(default_factory=list)


class EngineCaseOutcome(BaseModel):
    case_ref: str
    status: str
    resolution: str | None = None
    closure_code: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)


class CasePatchV2(BaseModel):
    """Absolute values for the case row (never deltas), so a replayed write is harmless."""

    status: str | None = None
    stage: str | None = None
    sla_state: str | None = None
    priority: str | None = None
    flags: list[str] | None = None
    ever_paused: bool | None = None
    access_roles: list[str] | None = None
    resolution: str | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    closure_reason: str | None = None
    assignee: str | None = None
    assignee_team: str | None = None
    assigned_at: datetime | None = None
    sla_due_at: datetime | None = None
    eta_at: datetime | None = None
    eta_p10_at: datetime | None = None
    eta_p90_at: datetime | None = None
    eta_basis: str | None = None
    clear: list[str] = Field(
        default_factory=list,
        description="Nullable columns to set to NULL (a None above means 'not sent')",
    )

    def values(self) -> dict[str, Any]:
        """The columns to write: what was sent, plus explicit NULLs."""
        cleared = {k: None for k in self.clear if k in CLEARABLE}
        return {**self.model_dump(exclude_none=True, exclude={"clear"}), **cleared}


CLEARABLE = frozenset(
    {
        "resolution",
        "resolved_at",
        "closed_at",
        "closure_reason",
        "sla_state",
        "assignee",
        "assignee_team",
        "assigned_at",
        "sla_due_at",
        "eta_at",
        "eta_p10_at",
        "eta_p90_at",
        "eta_basis",
    }
)


class EngineProjection(_Lean):
    """One atomic read-model write: everything that changed since the last one."""

    case_ref: str
    seed: EngineSeed | None = None
    version: int = Field(description="Monotonic per case; an older write never wins")
    rebuild: bool = Field(
        default=False, description="reproject: rewrite the case row at its current version too"
    )
    at: datetime
    case: CasePatchV2 = Field(default_factory=CasePatchV2)
    visits: list[StageVisit] = Field(default_factory=list)
    pauses: list[PauseRecord] = Field(default_factory=list)
    elements: list[ElementState] = Field(default_factory=list)
    events: list[AuditEvent] = Field(default_factory=list)


class ProjectResult(BaseModel):
    written: bool
    dead_lettered: bool = False


class SyncCaseInput(BaseModel):
    """Outbox flush: an optional projection rides along (written first), then messages."""

    case_ref: str
    projection: EngineProjection | None = None
    messages: list[NotifyInput] = Field(default_factory=list)
    webhooks: list[WebhookEvent] = Field(default_factory=list)


class SyncCaseResult(BaseModel):
    dead_lettered: bool = False
    delivered: int = 0
    failed: list[str] = Field(default_factory=list)


class AutomationInput(BaseModel):
    case_ref: str
    action: str
    element_key: str
    attempt_key: str = Field(description="Idempotency key: case + element + visit")
    args: dict[str, Any] = Field(default_factory=dict)
    client: ClientProfile | None = None
    at: datetime


class AutomationResult(BaseModel):
    outputs: dict[str, Any] = Field(default_factory=dict)
    summary: str = ""
    flags: list[str] = Field(default_factory=list)


class VerifyDocumentsInputV2(BaseModel):
    """Same shape as the frozen workflow's input (one activity serves both)."""

    case_ref: str
    checklist: list[DocumentRequirement]
    as_of: date
    reviews: dict[str, DocumentReview] = Field(default_factory=dict)


__all__ = [
    "AUTOMATIONS",
    "CASE_WORKFLOW",
    "FROZEN_ONBOARDING_WORKFLOW",
    "PROJECT_CASE",
    "RUN_AUTOMATION",
    "SYNC_CASE",
    "VERIFY_DOCUMENTS",
    "AutomationInput",
    "AutomationResult",
    "CasePatchV2",
    "EngineCaseInput",
    "EngineCaseOutcome",
    "EngineProjection",
    "EngineSeed",
    "ProjectResult",
    "SyncCaseInput",
    "SyncCaseResult",
    "VerificationResult",
    "VerifyDocumentsInputV2",
]


# ----------------------------------------------------------------------------- rebalancing
REBALANCE_WORKFLOW = "RebalanceWorkload"  # one run: plan, record, move (auto teams)
REBALANCE = "rebalance_workload"  # the activity that does it (reads the read model)
REBALANCE_SCHEDULE_ID = "workload-rebalancing"
ASSIGN = "assign"  # the case workflow's update that moves work


class RebalanceInput(BaseModel):
    trigger: Literal["schedule", "manual"] = "schedule"
    requested_by: str = Field(default="schedule", max_length=120)


class RebalanceActivityInput(RebalanceInput):
    run_key: str = Field(description="The run's workflow id and run id: retries reuse it")
    at: datetime


class MoveOutcome(BaseModel):
    id: int
    case_ref: str
    item: str
    title: str
    team: str
    from_person: str
    to_person: str
    status: str = Field(description="moved | proposed | refused")
    detail: str | None = None


class RebalanceReport(BaseModel):
    run_id: int
    moved: int = 0
    proposed: int = 0
    refused: int = 0
    teams: dict[str, Any] = Field(default_factory=dict)
    moves: list[MoveOutcome] = Field(default_factory=list)


# ----------------------------------------------------------------------------- two-way channels
DELIVERY_FALLBACK_WORKFLOW = "DeliveryFallback"  # one per message a provider gave up on
DELIVER_FALLBACK = "deliver_fallback"  # the activity: the same message, on the next channel


def fallback_workflow_id(outbox_key: str) -> str:
    """One fallback per message, ever: a second start with this id is refused."""
    return f"delivery-fallback-{outbox_key}"


CaseCarry.model_rebuild()  # it names CasePatchV2, defined below it
EngineCaseInput.model_rebuild()
