"""``task``: a human task with an assignee role, a due time, reminders and escalation when
overdue. The ``callback`` variant is a phone call that records its outcome."""

from __future__ import annotations

from datetime import datetime

from schemas.case_state import ElementState
from schemas.casetype import TaskElement
from schemas.engine_commands import CompleteTaskCmd
from workflows.engine.elements.base import (
    Forbidden,
    Invalid,
    WrongState,
    finish,
    open_element,
    resumed,
)
from workflows.engine.runtime import CaseRuntime

MANAGERS = frozenset({"case_manager", "admin"})


async def run(case: CaseRuntime, spec: TaskElement, element: ElementState) -> None:
    if not resumed(element):  # reminders and the due time run on from the element's state
        open_element(case, element, role=spec.assignee_role)
        if spec.due is not None:
            element.due_at = case.now() + spec.due
        case.event("task_opened", "system", {"task": spec.key, "assignee_role": spec.assignee_role})

    def timers() -> list[datetime]:
        return [t for t in _schedule(spec, element) if t is not None]

    def on_timer(now: datetime) -> None:
        _fire(case, spec, element, now)

    await case.wait_until(lambda: element.finished, timers=timers, on_timer=on_timer)


def _schedule(spec: TaskElement, element: ElementState) -> list[datetime | None]:
    if spec.due is None or element.opened_at is None or element.finished:
        return []
    pending = [element.opened_at + spec.due * f for f in spec.reminders[element.reminders_sent :]]
    return [*pending, None if element.overdue else element.due_at]


def _fire(case: CaseRuntime, spec: TaskElement, element: ElementState, now: datetime) -> None:
    if spec.due is None or element.opened_at is None or element.finished:
        return
    while element.reminders_sent < len(spec.reminders):
        fraction = spec.reminders[element.reminders_sent]
        if element.opened_at + spec.due * fraction > now:
            break
        element.reminders_sent += 1
        case.event("task_reminder", "system", {"task": spec.key, "fraction": fraction})
        case.tell_staff(
            "task_reminder",
            [spec.assignee_role],
            _notice(case, spec, element) | {"fraction": fraction},
        )
        case.projector.element(element)
    if not element.overdue and element.due_at is not None and element.due_at <= now:
        element.overdue = True
        case.state.priority = "high" if case.state.priority == "normal" else case.state.priority
        target = spec.escalate_to
        case.event("task_overdue", "system", {"task": spec.key, "escalated_to": target})
        case.tell_staff(
            "task_overdue",
            [r for r in (target, spec.assignee_role) if r],
            _notice(case, spec, element) | {"escalated_to": target},
        )
        case.projector.element(element)


def _notice(case: CaseRuntime, spec: TaskElement, element: ElementState) -> dict[str, object]:
    return {
        "task_title": spec.title,
        "stage": case.stage_def.title,
        "assignee_role": spec.assignee_role,
        "due_at": element.due_at,
    }


def validate_complete(case: CaseRuntime, cmd: CompleteTaskCmd) -> tuple[ElementState, TaskElement]:
    element = case.state.element(cmd.task_key)
    if element is None or element.kind != "task":
        planned = [e.key for s in case.case_type.stages for e in s.elements if e.kind == "task"]
        if cmd.task_key in planned:
            raise WrongState(f"task {cmd.task_key} is not open in this stage")
        raise Invalid(f"case {case.state.case_ref} has no task {cmd.task_key}")
    if element.finished:
        raise WrongState(f"task {cmd.task_key} is already {element.status.value}")
    if element.status.value != "active":
        raise WrongState(f"task {cmd.task_key} is not open yet")
    spec: TaskElement = case.element_def(element.key)
    if cmd.role not in MANAGERS and cmd.role != spec.assignee_role:
        raise Forbidden(f"task {cmd.task_key} is for {spec.assignee_role}")
    if spec.outcomes and cmd.outcome not in spec.outcomes:
        what = "a callback" if spec.variant == "callback" else f"task {spec.key}"
        raise Invalid(f"{what} records its outcome, one of: {', '.join(spec.outcomes)}")
    if cmd.outcome in spec.note_required and not (cmd.note or "").strip():
        raise Invalid(f"task {spec.key} needs a note when its outcome is {cmd.outcome}")
    return element, spec


def complete(case: CaseRuntime, cmd: CompleteTaskCmd) -> str:
    element, spec = validate_complete(case, cmd)
    finish(case, element, by=cmd.actor, outcome=cmd.outcome, note=cmd.note)
    if cmd.outcome is not None:
        case.record_decision(spec.key, cmd.outcome, cmd.actor, cmd.note)
    case.event(
        "task_completed",
        cmd.actor,
        {"task": spec.key, "stage": element.stage, "note": cmd.note, "outcome": cmd.outcome},
    )
    return f"task {spec.key} completed by {cmd.actor}"
