"""Straight-through processing: a stage's ``auto_complete`` rules sign off its people steps.

A clean case should not wait for a person who would only click "approve". When one of the
stage's rules holds as an approval, a checklist or a task without outcomes is reached, the
step is opened and finished by ``system`` at once, and the audit names the rule. The stage
keeps its SLA figures like any other visit. A step that needs more than one approver (a risky
case's ``required_when``) or a person's choice of outcome is always left to people.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from schemas.case_state import ElementState, Vote
from schemas.casetype import (
    ApprovalElement,
    AutoCompleteRule,
    ChecklistElement,
    StageDef,
    TaskElement,
)
from schemas.conditions import holds
from workflows.engine.elements import approval
from workflows.engine.elements.base import finish, open_element
from workflows.engine.runtime import CaseRuntime

AUTO_COMPLETE = "auto-complete"
"""Patch: a stage's ``auto_complete`` rules sign off its people steps (asked only when a rule
holds, so a case type without rules never records it)."""
KINDS = frozenset({"approval", "checklist", "task"})


def rule_for(case: CaseRuntime, stage: StageDef, spec: Any) -> AutoCompleteRule | None:
    """The first of the stage's rules that holds for this step, if the step may go by itself."""
    if not stage.auto_complete or spec.kind not in KINDS:
        return None
    if isinstance(spec, TaskElement) and spec.outcomes:
        return None  # a person's choice: nothing for the system to pick
    if isinstance(spec, ApprovalElement) and approval.required(spec, case.state.fields) > 1:
        return None
    facts = case.facts()
    return next((rule for rule in stage.auto_complete if holds(rule.when, facts)), None)


def sign_off(case: CaseRuntime, stage: StageDef, spec: Any, element: ElementState) -> bool:
    """Finish ``element`` as the system under the first rule that holds; False: people do it."""
    rule = rule_for(case, stage, spec)
    if rule is None or not workflow.patched(AUTO_COMPLETE):
        return False
    note = f"straight-through: rule {rule.name}"
    if isinstance(spec, ApprovalElement):
        open_element(case, element, role=spec.approver_roles[0], roles=spec.approver_roles)
        element.required = 1
        element.votes.append(Vote(actor="system", decision="approve", at=case.now(), note=note))
        finish(case, element, by="system", outcome="approved", note=note)
        case.record_decision(spec.key, "approved", "system", note)
    elif isinstance(spec, ChecklistElement):
        open_element(case, element, role=spec.role)
        element.ticked = {item.key: "system" for item in spec.items}
        finish(case, element, by="system", outcome="done", note=note)
    else:
        assert isinstance(spec, TaskElement)
        open_element(case, element, role=spec.assignee_role)
        finish(case, element, by="system", outcome="done", note=note)
    case.event(
        "auto_completed",
        "system",
        {"stage": stage.key, "element": spec.key, "rule": rule.name, "reason": rule.description},
    )
    return True
