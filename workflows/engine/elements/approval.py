"""``approval``: n-of-m approvals by role. Each approval comes from a different authenticated
identity; a rejection needs a reason code from the case type's list plus free text. A case
type may let it pass by itself (``auto_approve_when``: the straight-through path)."""

from __future__ import annotations

from schemas.case_state import ElementState, Vote
from schemas.casetype import ApprovalElement
from schemas.conditions import holds
from schemas.engine_commands import Decide
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

REJECTED = "rejected"


def required(spec: ApprovalElement, fields: dict[str, object]) -> int:
    for rule in spec.required_when:
        if holds(rule.when, fields):
            return max(rule.required, spec.required)
    return spec.required


async def run(case: CaseRuntime, spec: ApprovalElement, element: ElementState) -> None:
    if resumed(element):
        await case.wait_until(lambda: element.finished)
        return
    open_element(case, element, role=spec.approver_roles[0], roles=spec.approver_roles)
    element.required = required(spec, case.state.fields)
    if (
        element.required == 1
        and holds(spec.auto_approve_when, case.state.fields)
        and (spec.auto_approve_when is not None)
    ):
        reason = "straight-through: the case type's auto-approval rule holds"
        element.votes.append(Vote(actor="system", decision="approve", at=case.now(), note=reason))
        case.event("auto_approved", "system", {"approval": spec.key, "reason": reason})
        finish(case, element, by="system", outcome="approved")
        return
    case.event("approval_requested", "system", {"approval": spec.key, "required": element.required})
    await case.wait_until(lambda: element.finished)


def rejected(element: ElementState) -> bool:
    return element.kind == "approval" and element.outcome == REJECTED


def validate(case: CaseRuntime, cmd: Decide) -> tuple[ElementState, ApprovalElement]:
    element, spec = active(case, "approval", cmd.element, "an approval")
    assert isinstance(spec, ApprovalElement)
    if cmd.role not in spec.approver_roles and cmd.role != "admin":
        raise Forbidden(f"{spec.title} is decided by: {', '.join(spec.approver_roles)}")
    if any(v.actor.casefold() == cmd.actor.casefold() for v in element.votes):
        raise WrongState(
            f"{cmd.actor} has already approved {spec.title}; "
            "the next approval must come from a different person"
        )
    if spec.note_required and not (cmd.note or "").strip():
        raise Invalid(f"{spec.title} needs a note: the reason for the decision")
    if cmd.decision == "reject" and cmd.reason_code not in case.case_type.reject_reasons:
        raise Invalid(f"reason_code must be one of: {', '.join(case.case_type.reject_reasons)}")
    return element, spec


def decide(case: CaseRuntime, cmd: Decide) -> str:
    element, spec = validate(case, cmd)
    element.votes.append(
        Vote(
            actor=cmd.actor,
            decision=cmd.decision,
            at=case.now(),
            reason_code=cmd.reason_code,
            note=cmd.note,
        )
    )
    case.projector.element(element)
    case.event(
        f"approval_{cmd.decision}",
        cmd.actor,
        {"approval": spec.key, "reason_code": cmd.reason_code, "note": cmd.note},
    )
    if cmd.decision == "reject":
        finish(case, element, by=cmd.actor, outcome=REJECTED, note=cmd.note)
        case.record_decision(spec.key, REJECTED, cmd.actor, cmd.note, cmd.reason_code)
        return f"{spec.title} rejected by {cmd.actor} ({cmd.reason_code})"
    approvals = sum(v.decision == "approve" for v in element.votes)
    case.touch()
    if approvals < element.required:
        return (
            f"approval {approvals} of {element.required} recorded from {cmd.actor}; "
            "another person must approve"
        )
    finish(case, element, by=cmd.actor, outcome="approved")
    case.record_decision(spec.key, "approved", cmd.actor, cmd.note)
    return f"{spec.title} approved by {cmd.actor}"
