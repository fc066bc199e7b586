"""``checklist``: items a reviewer ticks before the stage can complete."""

from __future__ import annotations

from schemas.case_state import ElementState
from schemas.casetype import ChecklistElement
from schemas.engine_commands import TickItem
from workflows.engine.elements.base import (
    Forbidden,
    Invalid,
    WrongState,
    active,
    finish,
    open_element,
    resumed,
)
from workflows.engine.runtime import CaseRuntime


async def run(case: CaseRuntime, spec: ChecklistElement, element: ElementState) -> None:
    if not resumed(element):
        open_element(case, element, role=spec.role)
    await case.wait_until(lambda: element.finished)


def tick(case: CaseRuntime, cmd: TickItem, *, apply: bool) -> str:
    element, spec = active(case, "checklist", cmd.element, f"checklist {cmd.element}")
    assert isinstance(spec, ChecklistElement)
    if cmd.role not in ("case_manager", "admin", spec.role):
        raise Forbidden(f"checklist {spec.key} is ticked by {spec.role}")
    items = {i.key: i for i in spec.items}
    if cmd.item not in items:
        raise Invalid(f"checklist {spec.key} has no item {cmd.item!r}; it has {sorted(items)}")
    if cmd.item in element.ticked:
        raise WrongState(f"{items[cmd.item].title} is already ticked by {element.ticked[cmd.item]}")
    if not apply:
        return ""
    element.ticked[cmd.item] = cmd.actor
    case.projector.element(element)
    case.event("checklist_ticked", cmd.actor, {"checklist": spec.key, "item": cmd.item})
    if len(element.ticked) == len(items):
        finish(case, element, by=cmd.actor)
    case.touch()
    left = len(items) - len(element.ticked)
    return f"{items[cmd.item].title} ticked; {left} item(s) left"
