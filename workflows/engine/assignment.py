"""Work queues on a case: take, assign, reassign and release the case or one of its elements.

The person holding the work lives in the workflow's state (``assignee`` on the case and on each
element), so the read model's "My work" can be rebuilt from the workflows like everything
else. Who may hold what is ``schemas.work``; this module checks a command against where the
case is, applies it, audits it and tells both people.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.case_state import CaseState, ElementState
from schemas.engine_commands import AssignWork
from schemas.work import HOLDABLE_KINDS, MANAGERS, may_hold, why_not
from workflows.engine.elements.base import Forbidden, Invalid, WrongState
from workflows.engine.runtime import CaseRuntime

SYSTEM = "system"


@dataclass
class Holding:
    """What an assignment is about: the case (``element`` None) or one element."""

    title: str
    assignee: str | None
    assignee_team: str | None  # the holder's role
    element: ElementState | None = None

    @property
    def roles(self) -> list[str]:
        """Roles that may act on the element (one opened before roles were recorded: its
        queue's role)."""
        if self.element is None:
            return []
        return self.element.roles or [r for r in (self.element.assignee_role,) if r]

    @property
    def item(self) -> str:
        return self.element.key if self.element is not None else "case"


def holding(case: CaseRuntime, key: str | None) -> Holding:
    state = case.state
    if key is None:
        return Holding(
            title=f"case {state.case_ref}",
            assignee=state.assignee,
            assignee_team=state.assignee_team,
        )
    element = state.element(key)
    if element is None:
        known = [e.key for s in case.case_type.stages for e in s.elements]
        if key in known:
            raise WrongState(f"{key} is not part of the current stage ({state.stage})")
        raise Invalid(f"case type {case.case_type.name} has no element {key!r}")
    if element.kind not in HOLDABLE_KINDS:
        raise Invalid(
            f"{element.title} is a {element.kind} step; only {', '.join(HOLDABLE_KINDS)} "
            "steps are assigned to people"
        )
    if element.finished:
        raise WrongState(f"{element.title} is already {element.status.value}")
    return Holding(
        title=element.title,
        assignee=element.assignee,
        assignee_team=element.assignee_team,
        element=element,
    )


def half_approved(state: CaseState) -> ElementState | None:
    """An approval of this visit with some votes but not decided: its case keeps its people."""
    for element in state.elements:
        if element.kind == "approval" and element.votes and not element.finished:
            return element
    return None


def validate(case: CaseRuntime, cmd: AssignWork) -> Holding:
    held = holding(case, cmd.element)
    if cmd.if_held_by is not None and held.assignee != cmd.if_held_by:
        now = held.assignee or "nobody (it is in the team queue)"
        raise WrongState(f"{held.title} is now held by {now}, not {cmd.if_held_by}")
    if cmd.assignee == held.assignee:
        who = cmd.assignee or "nobody"
        raise WrongState(f"{held.title} is already held by {who}")
    if held.assignee is not None and cmd.reason is None:
        raise Invalid(f"{held.title} is held by {held.assignee}; moving it needs a reason")
    manager = cmd.role in MANAGERS
    if cmd.assignee is None:
        if not manager and cmd.actor != held.assignee:
            raise Forbidden(f"only {held.assignee} or a case manager may release {held.title}")
    elif cmd.assignee != cmd.actor and not manager and cmd.role != cmd.assignee_team:
        raise Forbidden(
            f"{cmd.actor} ({cmd.role}) may assign work only to their own team; "
            f"{cmd.assignee} is {cmd.assignee_team}"
        )
    if cmd.assignee is not None:
        if cmd.assignee_team is None:
            raise Invalid(f"no role is known for {cmd.assignee}")
        refusal = why_not(
            cmd.assignee,
            cmd.assignee_team,
            stage=case.stage_def.key,
            stage_access=case.stage_def.access,
            element_kind=held.element.kind if held.element is not None else None,
            element_title=held.title,
            roles=held.roles,
        )
        if refusal is not None:
            raise Forbidden(refusal)
    if cmd.via == "rebalancing":
        pending = half_approved(case.state)
        if pending is not None and (held.element is None or held.element.kind == "approval"):
            raise WrongState(
                f"{pending.title} is already half approved; the case keeps its approver"
            )
    return held


def apply(case: CaseRuntime, cmd: AssignWork) -> str:
    held = validate(case, cmd)
    now = case.now()
    target: CaseState | ElementState = held.element if held.element is not None else case.state
    target.assignee, target.assignee_team = cmd.assignee, cmd.assignee_team
    target.assigned_at = now if cmd.assignee is not None else None
    if held.element is not None:
        case.projector.element(held.element)
    else:
        case.projector.case(
            assignee=cmd.assignee, assignee_team=cmd.assignee_team, assigned_at=target.assigned_at
        )
    if cmd.assignee is None:
        kind, said = "work_released", f"{held.title} is back in the team queue"
    elif held.assignee is not None:
        kind, said = "work_reassigned", f"{held.title} moved to {cmd.assignee}"
    elif cmd.assignee == cmd.actor:
        kind, said = "work_taken", f"{held.title} taken by {cmd.actor}"
    else:
        kind, said = "work_assigned", f"{held.title} assigned to {cmd.assignee}"
    detail = {
        "item": held.item,
        "title": held.title,
        "from": held.assignee,
        "to": cmd.assignee,
        "reason": cmd.reason,
        "via": cmd.via,
    }
    case.event(kind, cmd.actor, detail)
    notice = {
        "title": held.title,
        "stage": case.stage_def.title,
        "by": cmd.actor,
        "to": cmd.assignee,
        "previous": held.assignee,
        "reason": cmd.reason,
        "via": cmd.via,
    }
    if cmd.assignee is not None and cmd.assignee != cmd.actor:
        case.tell_person("work_assigned", cmd.assignee, cmd.assignee_team, notice)
    if held.assignee is not None and held.assignee != cmd.actor:
        case.tell_person("work_assigned", held.assignee, held.assignee_team, notice)
    case.touch()
    return said


def on_stage_entered(case: CaseRuntime) -> None:
    """A new stage: the case's holder keeps it only if they may act in this stage."""
    state = case.state
    if state.assignee is None:
        return
    stage = case.stage_def
    if may_hold(state.assignee_team or "", stage_access=stage.access):
        return
    case.event(
        "work_released",
        SYSTEM,
        {
            "item": "case",
            "title": f"case {state.case_ref}",
            "from": state.assignee,
            "to": None,
            "reason": f"{state.assignee} may not act in {stage.title}",
            "via": "stage_access",
        },
    )
    state.assignee = state.assignee_team = state.assigned_at = None
    case.projector.case(assignee=None, assignee_team=None, assigned_at=None)
