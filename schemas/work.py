"""Who may hold which work: the one rule behind take, assign, reassign and rebalancing.

A case's work is held by people: the case itself (whoever is working it in its current stage)
and each open task, approval or checklist of that stage. Each role is a team; a person may hold
an item when their role may act on it, exactly as the workflow checks when they act:

- the stage's ``access`` (empty: any staff role), and
- the element's own roles: a task's ``assignee_role`` (case managers act on every task), an
  approval's approver roles, a checklist's role (case managers tick every checklist).

Admins pass every check. Operators watch; they hold no work. Pure and shared: the workflow's
validator, the API and the rebalancing planner all call these.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, Field

HOLDABLE_KINDS = ("task", "approval", "checklist")
"""Element kinds a person works on (documents wait on the client, automations on systems)."""

PERSON = "person:"
"""Staff notices to one person name ``person:<username>`` as their recipient."""

NON_STAFF = frozenset({"client", "client_app", "operator"})
MANAGERS = frozenset({"case_manager", "admin"})


def element_roles(kind: str, roles: Sequence[str]) -> list[str]:
    """The roles that may act on an element of ``kind`` whose own roles are ``roles``."""
    if kind in ("task", "checklist"):
        return sorted({*roles, "case_manager"})
    return sorted(set(roles))


def may_hold(
    person_role: str,
    *,
    stage_access: Sequence[str],
    element_kind: str | None = None,
    roles: Sequence[str] = (),
) -> bool:
    """May someone with ``person_role`` hold this work (the case when ``element_kind`` is
    None, else the element)?"""
    if person_role == "admin":
        return True
    if person_role in NON_STAFF:
        return False
    if stage_access and person_role not in stage_access:
        return False
    if element_kind is None:
        return True
    return person_role in element_roles(element_kind, roles)


def why_not(
    person: str,
    person_role: str,
    *,
    stage: str,
    stage_access: Sequence[str],
    element_kind: str | None = None,
    element_title: str | None = None,
    roles: Sequence[str] = (),
) -> str | None:
    """None when ``person`` may hold the work, else the reason in words (a 403's detail)."""
    if may_hold(person_role, stage_access=stage_access, element_kind=element_kind, roles=roles):
        return None
    if person_role in NON_STAFF:
        return f"{person} ({person_role}) cannot hold case work"
    if stage_access and person_role not in stage_access:
        return (
            f"{person} ({person_role}) may not act in stage {stage}; "
            f"it is restricted to: {', '.join(stage_access)}"
        )
    allowed = element_roles(element_kind or "", roles)
    return (
        f"{person} ({person_role}) may not act on {element_title}; it is for: {', '.join(allowed)}"
    )


# ----------------------------------------------------------------------------- read side
AT_RISK_STATES = frozenset({"warning", "at_risk", "breached"})
"""A case whose stage SLA is in one of these is near (or past) breach."""


class WorkItem(BaseModel):
    """One piece of open work as queues show it: a case, or one step of its current stage."""

    case_ref: str
    case_type: str
    workflow_id: str
    item: str = Field(description='"case", or the step\'s element key')
    kind: str = Field(description="case | task | approval | checklist")
    title: str
    stage: str
    team: str | None = Field(default=None, description="The queue (role) a step is in")
    stage_access: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list, description="Roles that may act on the step")
    assignee: str | None = None
    assignee_team: str | None = None
    assigned_at: datetime | None = None
    opened_at: datetime | None = None
    due_at: datetime | None = None
    sla_state: str | None = None
    overdue: bool = False
    half_approved: bool = Field(
        default=False, description="An approval of the stage has votes: it keeps its approver"
    )

    @property
    def at_risk(self) -> bool:
        return self.overdue or (self.sla_state or "") in AT_RISK_STATES

    @property
    def element_kind(self) -> str | None:
        return None if self.item == "case" else self.kind

    def holdable_by(self, role: str) -> bool:
        return may_hold(
            role, stage_access=self.stage_access, element_kind=self.element_kind, roles=self.roles
        )

    @property
    def pinned(self) -> bool:
        """Rebalancing leaves it where it is (a half-given approval keeps its approver)."""
        return self.half_approved and self.kind in ("case", "approval")
