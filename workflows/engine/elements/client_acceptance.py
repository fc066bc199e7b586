"""``client_acceptance``: propose an outcome to the client (portal and email link). Accept
completes the element; reject sends the case back with the client's reason."""

from __future__ import annotations

from schemas.case_state import ElementState
from schemas.casetype import ClientAcceptanceElement
from schemas.engine_commands import ProposalResponse
from workflows.engine.elements.base import Forbidden, active, finish, open_element, resumed
from workflows.engine.runtime import CaseRuntime

CLIENT_SIDE = frozenset({"client", "client_app", "case_manager", "admin"})


async def run(case: CaseRuntime, spec: ClientAcceptanceElement, element: ElementState) -> None:
    if not resumed(element):
        open_element(case, element, role="client")
        if spec.respond_within is not None:
            element.due_at = case.now() + spec.respond_within
        case.tell_client(
            "proposal", extra={"proposal": spec.proposal, "respond_by": element.due_at}
        )
        case.event("proposal_sent", "system", {"element": spec.key})
    await case.wait_until(lambda: element.finished)


def respond(case: CaseRuntime, cmd: ProposalResponse, *, apply: bool) -> str:
    element, spec = active(case, "client_acceptance", None, "the client's answer to a proposal")
    assert isinstance(spec, ClientAcceptanceElement)
    if cmd.role not in CLIENT_SIDE:
        raise Forbidden("only the client (portal or client app) answers a proposal")
    if not apply:
        return ""
    if cmd.accept:
        finish(case, element, by=cmd.actor, outcome="accepted")
        case.event("proposal_accepted", cmd.actor, {"element": spec.key})
        return "proposal accepted"
    target = spec.send_back_to or case.state.stage
    finish(case, element, by=cmd.actor, outcome="rejected", note=cmd.reason)
    case.event("proposal_rejected", cmd.actor, {"element": spec.key, "reason": cmd.reason})
    case.jump = (target, "sent_back", cmd.actor, f"client rejected the proposal: {cmd.reason}")
    case.touch()
    return f"proposal rejected; the case goes back to {target}"
