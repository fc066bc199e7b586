"""Case types as data: the YAML a process owner edits, validated when it loads.

A case type declares typed case fields, lifecycle rules and an ordered list of stages; each stage
an SLA, owner, access roles and an ordered list of *elements* (task, approval, documents,
automation, client_acceptance, notification, subprocess, checklist). One engine
(``workflows.engine``) runs any case type. The whole validated model travels in the workflow
input when a case opens, so an edit to the YAML changes new cases only and replay stays
deterministic.
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from schemas.documents import DocumentRequirement
from schemas.plan import EscalationLevel, Messaging, PredictiveAlert, parse_duration

KEY = r"^[a-z][a-z0-9_]{0,59}$"
ROLE = r"^[a-z][a-z0-9_]{0,39}$"
FIELD_PATH = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"


_NO_DEFAULT = object()


@functools.cache
def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """Serialised key -> default, once per model class (asking pydantic per value is slow)."""
    found: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        default = info.get_default(call_default_factory=True)
        if info.is_required() or isinstance(default, BaseModel):
            default = _NO_DEFAULT  # required, or a nested model: always written
        found[name] = default  # dumped by name (model_dump) or by alias (by_alias=True)
        if info.alias:
            found[info.alias] = default
    return found


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_serializer(mode="wrap")
    def _lean(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Leave out what a reader would get anyway (None and defaults, never ``kind``): the
        pinned case type travels in every case's history, so its size is paid per case."""
        data = handler(self)
        if not isinstance(data, dict):
            return data
        defaults = _defaults(type(self))
        return {
            key: value
            for key, value in data.items()
            if key == "kind"
            or key not in defaults
            or (value is not None and value != defaults[key])
        }


# ----------------------------------------------------------------------------- conditions
_TESTS = ("eq", "ne", "in_", "not_in", "gt", "gte", "lt", "lte", "contains", "exists")


class Condition(_Strict):
    """A test over case fields, written inline in YAML.

    ``{field: client.tier, in: [premium]}``, ``{field: order_value, gt: 50000}``,
    ``{all: [...]}``, ``{any: [...]}``, ``{not: {...}}``. Exactly one form per condition.
    Fields are dotted paths into the case's fields: ``client.*`` (the profile),
    ``international`` (country differs from the type's home country), the case type's own
    declared fields, and what automations wrote (e.g. ``screening.risk_level``).
    A missing field compares as absent: only ``exists: false`` and ``ne`` hold for it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    field: str | None = Field(default=None, pattern=FIELD_PATH)
    eq: Any = None
    ne: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    contains: Any = None
    exists: bool | None = None
    all_: list[Condition] | None = Field(default=None, alias="all")
    any_: list[Condition] | None = Field(default=None, alias="any")
    not_: Condition | None = Field(default=None, alias="not")

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        combinators = [x for x in (self.all_, self.any_, self.not_) if x is not None]
        tests = [
            name
            for name in (
                "eq",
                "ne",
                "in_",
                "not_in",
                "gt",
                "gte",
                "lt",
                "lte",
                "contains",
                "exists",
            )
            if getattr(self, name) is not None
        ]
        if self.field is None:
            if len(combinators) != 1 or tests:
                raise ValueError("a condition is {field: …, <test>: …} or one of all/any/not")
        elif combinators or len(tests) != 1:
            raise ValueError(f"condition on {self.field} needs exactly one test (eq, in, gt, …)")
        return self


# ----------------------------------------------------------------------------- fields
class FieldDef(_Strict):
    """A typed case field the API validates in ``POST /cases`` ``data``."""

    type: Literal["string", "integer", "number", "boolean", "date", "enum"]
    title: str = ""
    required: bool = False
    values: list[str] = Field(default_factory=list, description="for enum")
    max_length: int = Field(default=500, ge=1, le=10_000)
    minimum: float | None = None
    maximum: float | None = None

    @model_validator(mode="after")
    def _enum_has_values(self) -> FieldDef:
        if self.type == "enum" and not self.values:
            raise ValueError("an enum field needs values")
        return self


# ----------------------------------------------------------------------------- elements
class _Element(_Strict):
    key: str = Field(pattern=KEY, description="Unique within the case type")
    title: str = Field(min_length=1, max_length=200)
    optional: bool = Field(
        default=False, description="A case manager may skip it with a reason (audited)"
    )
    when: Condition | None = Field(
        default=None, description="Runs only when this holds at the moment the element is reached"
    )


class TaskElement(_Element):
    """A human task. ``callback`` is a phone call that records its outcome."""

    kind: Literal["task"] = "task"
    variant: Literal["task", "callback"] = "task"
    assignee_role: str = Field(pattern=ROLE)
    due: timedelta | None = Field(default=None, description="Due this long after it opens")
    reminders: list[float] = Field(
        default_factory=list, description="Fractions of the due time at which to remind"
    )
    escalate_to: str | None = Field(default=None, pattern=ROLE, description="When overdue")
    outcomes: list[str] = Field(
        default_factory=list,
        description="Outcomes the person completing it picks from (a callback must list "
        "them); later conditions read it as decisions.<key>.outcome",
    )
    note_required: list[str] = Field(
        default_factory=list, description="Outcomes that need a note (the reason)"
    )

    _parse = field_validator("due", mode="before")(parse_duration)

    @field_validator("reminders")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0 < v < 1 for v in value):
            raise ValueError("reminders are fractions of the due time, between 0 and 1")
        return sorted(set(value))

    @model_validator(mode="after")
    def _callback_outcomes(self) -> TaskElement:
        if self.variant == "callback" and not self.outcomes:
            raise ValueError("a callback task lists its outcomes (e.g. reached, no_answer)")
        if self.reminders and self.due is None:
            raise ValueError("reminders need a due time")
        if set(self.note_required) - set(self.outcomes):
            raise ValueError("note_required names outcomes the task does not list")
        return self


class RequiredWhen(_Strict):
    when: Condition
    required: int = Field(ge=1, le=10)


class ApprovalElement(_Element):
    """n-of-m approvals by role. Each approval comes from a different identity."""

    kind: Literal["approval"] = "approval"
    approver_roles: list[str] = Field(min_length=1)
    required: int = Field(default=1, ge=1, le=10)
    required_when: list[RequiredWhen] = Field(
        default_factory=list, description="First matching rule raises the number required"
    )
    auto_approve_when: Condition | None = Field(
        default=None, description="Straight-through: the approval passes by itself"
    )
    on_reject: Literal["resolve", "send_back", "continue"] = Field(
        default="resolve",
        description="resolve the case, send it back, or continue with the stage's next "
        "elements (which read the decision as decisions.<key>.outcome)",
    )
    send_back_to: str | None = Field(default=None, pattern=KEY)
    rejected_resolution: str = Field(default="rejected", pattern=KEY)
    note_required: bool = Field(
        default=False, description="Every decision, approve or reject, states its reason"
    )

    @model_validator(mode="after")
    def _send_back_target(self) -> ApprovalElement:
        if self.on_reject == "send_back" and self.send_back_to is None:
            raise ValueError("on_reject: send_back needs send_back_to")
        return self


class DocumentsElement(_Element):
    """Client documents: a checklist per client type; upload, verify and waive (audited)."""

    kind: Literal["documents"] = "documents"
    checklists: dict[str, list[DocumentRequirement]] = Field(
        description="client type -> what to upload ('default' for any other type)"
    )
    verify: bool = Field(default=True, description="Run verification on every upload")
    notify_received: str | None = Field(default=None, description="milestone when accepted")
    notify_needed: str | None = Field(default=None, description="milestone to ask again")


class AutomationElement(_Element):
    """A named automation run by an activity. Results land in ``fields[output]``."""

    kind: Literal["automation"] = "automation"
    action: str = Field(pattern=KEY, description="A name the worker's automation registry knows")
    input: dict[str, str] = Field(
        default_factory=dict, description="argument -> field path (or '=literal')"
    )
    output: str | None = Field(default=None, pattern=KEY)
    compensate: str | None = Field(
        default=None, pattern=KEY, description="Action that undoes it if the case is cancelled"
    )
    notify_before: str | None = None
    notify_after: str | None = None
    timeout: timedelta = Field(default=timedelta(minutes=2))

    _parse = field_validator("timeout", mode="before")(parse_duration)


class ClientAcceptanceElement(_Element):
    """Propose an outcome to the client (portal and email link). Accept completes the stage;
    reject sends it back with the client's reason."""

    kind: Literal["client_acceptance"] = "client_acceptance"
    proposal: str = Field(min_length=1, max_length=2000, description="What the client accepts")
    send_back_to: str | None = Field(default=None, pattern=KEY, description="default: this stage")
    respond_within: timedelta | None = None

    _parse = field_validator("respond_within", mode="before")(parse_duration)


class NotificationElement(_Element):
    """A milestone message to the client (on their channels) or to a staff role."""

    kind: Literal["notification"] = "notification"
    milestone: str = Field(pattern=KEY)
    to: Literal["client", "staff"] = "client"
    role: str | None = Field(default=None, pattern=ROLE, description="for to: staff")
    body: str | None = Field(default=None, max_length=2000, description="for case_update")
    urgent: bool = False


class SubprocessElement(_Element):
    """A child case of another case type, with its own SLA. The parent waits for it;
    cancelling the parent cancels the child."""

    kind: Literal["subprocess"] = "subprocess"
    case_type: str = Field(pattern=KEY)
    data: dict[str, str] = Field(default_factory=dict, description="child field -> parent path")
    output: str | None = Field(default=None, pattern=KEY)


class ChecklistItem(_Strict):
    key: str = Field(pattern=KEY)
    title: str = Field(min_length=1, max_length=200)


class ChecklistElement(_Element):
    """Items a reviewer ticks before the stage can complete."""

    kind: Literal["checklist"] = "checklist"
    role: str = Field(pattern=ROLE)
    items: list[ChecklistItem] = Field(min_length=1)


Element = Annotated[
    TaskElement
    | ApprovalElement
    | DocumentsElement
    | AutomationElement
    | ClientAcceptanceElement
    | NotificationElement
    | SubprocessElement
    | ChecklistElement,
    Field(discriminator="kind"),
]


# ----------------------------------------------------------------------------- stages
class AutoCompleteRule(_Strict):
    """Straight-through processing: while ``when`` holds, the stage's approvals, checklists
    and tasks without outcomes are signed off by ``system`` as each is reached, and the audit
    names the rule. Besides the usual paths, ``when`` may read ``case.human_steps`` (steps a
    person has done so far), ``case.ever_paused`` and ``case.reopened``."""

    name: str = Field(pattern=KEY)
    when: Condition
    description: str | None = Field(default=None, max_length=500)


class StageDef(_Strict):
    key: str = Field(pattern=KEY)
    title: str = Field(min_length=1, max_length=200)
    owner_role: str = Field(pattern=ROLE)
    access: list[str] = Field(
        default_factory=list,
        description="Roles that may see and act on the case in this stage (empty: any staff)",
    )
    sla: timedelta | None = None
    calendar: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,59}$",
        description="Business calendar the SLA counts in (default: the case type's; none: 24/7)",
    )
    warn_at: list[float] = Field(default_factory=lambda: [0.8])
    predictive: PredictiveAlert | None = None
    escalations: list[EscalationLevel] = Field(default_factory=list)
    escalations_stop_when_acknowledged: bool = Field(
        default=False,
        description="Once someone acknowledges an escalation, later levels of the same breach "
        "are held back (recorded on the timeline, not sent)",
    )
    sla_pauses_when_waiting_on_client: bool = True
    client_status: str | None = Field(default=None, description="What the portal calls it")
    when: Condition | None = Field(
        default=None, description="The stage runs only when this holds as the case reaches it"
    )
    elements: list[Element] = Field(default_factory=list)
    auto_complete: list[AutoCompleteRule] = Field(
        default_factory=list,
        description="Rules (first that holds wins) under which the stage's people steps are "
        "signed off by the system: the straight-through path",
    )

    _parse = field_validator("sla", mode="before")(parse_duration)

    @field_validator("warn_at")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0 < v < 1 for v in value):
            raise ValueError("warning thresholds are fractions of the SLA, between 0 and 1")
        return sorted(set(value))


class Lifecycle(_Strict):
    close_after: timedelta = Field(default=timedelta(days=7), description="resolved -> closed")
    reopen_on_client_message: bool = True
    reopen_on_low_feedback: bool = True
    csat_reopen_at_or_below: int = Field(default=2, ge=1, le=5)
    nps_reopen_at_or_below: int = Field(default=6, ge=0, le=10)
    reopen_stage: str | None = Field(
        default=None, pattern=KEY, description="Where an automatic reopen lands (default: last)"
    )

    _parse = field_validator("close_after", mode="before")(parse_duration)


class CaseType(_Strict):
    """One case type file."""

    name: str = Field(pattern=KEY)
    version: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    workflow_prefix: str = Field(default="", pattern=r"^([a-z][a-z0-9_\-]{0,30})?$")
    startable: bool = Field(default=True, description="False: only as a subprocess")
    home_country: str = Field(default="GB", min_length=2, max_length=2)
    fields: dict[str, FieldDef] = Field(default_factory=dict)
    reject_reasons: list[str] = Field(default_factory=lambda: ["other"])
    closure_codes: list[str] = Field(
        default_factory=lambda: ["client_withdrew", "duplicate", "fraud_suspected", "other"]
    )
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    calendar: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,59}$",
        description="Business calendar of every stage's SLA (a stage may pick another); "
        "none: 24/7 wall-clock time",
    )
    messaging: Messaging = Field(default_factory=Messaging)
    contact_roles: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Additional contacts: role (legal, finance, ...) -> the client milestones "
        "a contact in that role receives",
    )
    webhooks: list[str] = Field(
        default_factory=list, description="Events sent to WEBHOOK_URL, e.g. case.resolved"
    )
    stages: list[StageDef] = Field(min_length=1)

    @field_validator("contact_roles")
    @classmethod
    def _contact_roles(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for role, milestones in value.items():
            if not re.fullmatch(KEY, role):
                raise ValueError(f"contact role {role!r} must be a lower_snake_case key")
            if len(set(milestones)) != len(milestones):
                raise ValueError(f"contact role {role}: a milestone is listed twice")
        return value

    @field_validator("fields")
    @classmethod
    def _field_names(cls, value: dict[str, FieldDef]) -> dict[str, FieldDef]:
        for name in value:
            if not re.fullmatch(KEY, name) or name in ("client", "international", "case"):
                raise ValueError(f"field name {name!r} is reserved or not a lowercase key")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CaseType:
        stage_keys = [s.key for s in self.stages]
        if len(stage_keys) != len(set(stage_keys)):
            raise ValueError("stage keys must be unique")
        element_keys = [e.key for s in self.stages for e in s.elements]
        dupes = sorted({k for k in element_keys if element_keys.count(k) > 1})
        if dupes:
            raise ValueError(f"element keys must be unique across the case type: {dupes}")
        for stage in self.stages:
            for element in stage.elements:
                target = getattr(element, "send_back_to", None)
                if target is not None and target not in stage_keys:
                    raise ValueError(f"{element.key}: send_back_to {target!r} is not a stage")
                if target is not None and stage_keys.index(target) > stage_keys.index(stage.key):
                    raise ValueError(f"{element.key}: can only send back to an earlier stage")
        if self.lifecycle.reopen_stage and self.lifecycle.reopen_stage not in stage_keys:
            raise ValueError(f"lifecycle.reopen_stage {self.lifecycle.reopen_stage!r} unknown")
        return self

    def stage(self, key: str) -> StageDef:
        for item in self.stages:
            if item.key == key:
                return item
        raise KeyError(key)

    def stage_index(self, key: str) -> int:
        return [s.key for s in self.stages].index(key)

    def roles(self) -> set[str]:
        """Every role the case type names (checked against the staff directory at load)."""
        found: set[str] = set()
        for stage in self.stages:
            found.add(stage.owner_role)
            found.update(stage.access)
            found.update(e.target for e in stage.escalations)
            for el in stage.elements:
                for attr in ("assignee_role", "escalate_to", "role"):
                    value = getattr(el, attr, None)
                    if value:
                        found.add(value)
                found.update(getattr(el, "approver_roles", []))
        return found


Condition.model_rebuild()


class CaseTypeSummary(BaseModel):
    """``GET /case-types``: one line per type."""

    name: str
    version: str
    title: str
    description: str
    startable: bool
    stages: list[str]
    fields: dict[str, FieldDef]


__all__ = [
    "ApprovalElement",
    "AutomationElement",
    "CaseType",
    "CaseTypeSummary",
    "ChecklistElement",
    "ClientAcceptanceElement",
    "Condition",
    "DocumentsElement",
    "Element",
    "FieldDef",
    "Lifecycle",
    "NotificationElement",
    "StageDef",
    "SubprocessElement",
    "TaskElement",
]
