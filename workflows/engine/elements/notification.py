"""``notification``: a milestone message to the client, or a notice to a staff role."""

from __future__ import annotations

from schemas.case_state import ElementState
from schemas.casetype import NotificationElement
from workflows.engine.elements.base import finish, open_element
from workflows.engine.runtime import CaseRuntime


async def run(case: CaseRuntime, spec: NotificationElement, element: ElementState) -> None:
    open_element(case, element)
    extra: dict[str, object] = {}
    if spec.milestone == "case_update":
        extra = {"heading": spec.title, "lines": [spec.body] if spec.body else []}
    if spec.to == "client":
        case.tell_client(spec.milestone, extra=extra, urgent=spec.urgent)
    else:
        role = spec.role or case.stage_def.owner_role
        case.tell_staff(spec.milestone, [role], extra)
    finish(case, element, by="system", outcome=f"sent {spec.milestone}")
