"""What every element kind shares: opening, finishing, and refusing a command."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.exceptions import ApplicationError

from schemas.case_state import ElementState, ElementStatus
from schemas.work import HOLDABLE_KINDS, element_roles
from workflows.engine.runtime import CaseRuntime


class WrongState(ApplicationError):
    """A command that does not fit where the case is: the API answers 409."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="WrongState", non_retryable=True)


class Forbidden(ApplicationError):
    """The caller's role may not do this here: the API answers 403."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="Forbidden", non_retryable=True)


class Invalid(ApplicationError):
    """The command names something the case type does not have: the API answers 422."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="Invalid", non_retryable=True)


def resumed(element: ElementState) -> bool:
    """A runner meets its element already active only in a continued run (continue-as-new
    happens while a case waits): it then skips what opening did and waits on as before."""
    return element.status == ElementStatus.ACTIVE


def open_element(
    case: CaseRuntime,
    element: ElementState,
    *,
    role: str | None = None,
    roles: Sequence[str] = (),
) -> None:
    """Active now. ``role`` is the team whose queue it is in; ``roles`` every role that may
    act on it (default: that team), recorded so work queues can tell who may hold it."""
    element.status = ElementStatus.ACTIVE
    element.opened_at = case.now()
    element.assignee_role = role or element.assignee_role
    if element.kind in HOLDABLE_KINDS:
        own = list(roles) or [r for r in (element.assignee_role,) if r]
        element.roles = element_roles(element.kind, own)
    case.projector.element(element)


def finish(
    case: CaseRuntime,
    element: ElementState,
    *,
    by: str,
    status: ElementStatus = ElementStatus.DONE,
    outcome: str | None = None,
    note: str | None = None,
) -> None:
    element.status = status
    element.finished_at = case.now()
    element.done_by = by
    if outcome is not None:
        element.outcome = outcome
    if note is not None:
        element.note = note
    case.projector.element(element)
    case.recheck_risk()
    case.touch()


def active(case: CaseRuntime, kind: str, key: str | None, what: str) -> tuple[ElementState, Any]:
    """The active element of ``kind`` (or the one named ``key``) with its definition; 409 if
    the case is not waiting for one now."""
    for element in case.active_elements():
        if element.kind == kind and (key is None or element.key == key):
            return element, case.element_def(element.key)
    known = [e.key for s in case.case_type.stages for e in s.elements if e.kind == kind]
    if key is not None and key not in known:
        raise Invalid(f"case type {case.case_type.name} has no {kind} element {key!r}")
    waiting = case.awaiting()
    raise WrongState(
        f"case {case.state.case_ref} is at {case.state.stage}"
        + (f", waiting for {waiting}" if waiting else "")
        + f"; it is not waiting for {what} now"
    )
