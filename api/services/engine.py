"""Talking to a case's workflow, for both engines, by name only.

Every case row says which engine owns it: ``case`` (the generic case engine, workflow type
``CaseWorkflow``) or ``onboarding-v1`` (cases started before the engine, still run by the frozen
``OnboardingCaseWorkflow``). This module loads the row once (404), applies the stage's access
rule (403), refuses commands to closed or unstarted cases (409), then sends the command by name
and turns the workflow's refusal into an HTTP status:

- engine updates refuse in their validator with ``ApplicationError`` type ``WrongState`` (409),
  ``Forbidden`` (403) or ``Invalid`` (422);
- an unreachable Temporal is a 503 with ``Retry-After``, never a 500.

Nothing here imports workflow code: the API addresses workflows, updates, signals and queries by
their names, with the argument and result models from ``schemas``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from fastapi import HTTPException, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import Caller
from core.settings import Role
from schemas.case import CaseState, status_is_closed
from schemas.case_state import ElementState, ElementStatus, PauseRecord, StageVisit, Vote
from schemas.commands import CommandAccepted
from schemas.engine_commands import CommandResult
from schemas.enums import CaseStatus, Stage
from schemas.snapshot import CaseSnapshot, SlaNow, StagePlan
from store.models import Case

log = logging.getLogger(__name__)

ENGINE = "case"
FROZEN = "onboarding-v1"
RETRY_AFTER = "5"
# A query needs a worker: with none polling, answer 503 within 5 s rather than hang (a few
# of many concurrent queries take two rounds of this).
QUERY_TIMEOUT = timedelta(seconds=2)  # a cached case answers in milliseconds
# ... and whatever the client's own retries do (a busy server answers RESOURCE_EXHAUSTED and
# the SDK backs off), the caller has its answer by then. 2.5 s: the limit callers are promised
# is 5 s, and with 50 such reads in flight on a loaded 2-core machine the rest of a request
# (routing, the case row, the 503) once took 2.4 s (CI). That rest is not bounded here.
QUERY_DEADLINE = timedelta(seconds=2.5)
# An update waits for a worker to accept it; past this the caller gets 503 and retries (a
# repeat is refused by the validator if the first one landed after all).
COMMAND_TIMEOUT = timedelta(seconds=10)
STAFF_ROLES = frozenset(
    {Role.CASE_MANAGER, Role.COMPLIANCE_REVIEWER, Role.RELATIONSHIP_MANAGER, Role.OPERATOR}
)

# Engine update names (schemas.engine_commands has one input model per update).
PAUSE = "pause"
RESUME = "resume"
DECIDE = "decide"
COMPLETE_TASK = "complete_task"
SKIP = "skip"
TICK = "tick"
ACKNOWLEDGE_ESCALATION = "acknowledge_escalation"
WAIVE_DOCUMENTS = "waive_documents"
REVIEW_DOCUMENT = "review_document"
SEND_BACK = "send_back"
REOPEN = "reopen"
CANCEL = "cancel"
RESPOND_TO_PROPOSAL = "respond_to_proposal"
CLIENT_MESSAGE = "client_message"
FEEDBACK = "feedback"
DOCUMENTS_UPLOADED = "documents_uploaded"  # signal
STATE = "state"  # query, both engines

# The frozen onboarding workflow's handler names (its class is not imported).
FROZEN_PAUSE = "pause"  # signal
FROZEN_RESUME = "resume"  # signal
FROZEN_DOCUMENTS_RECEIVED = "documents_received"  # signal
FROZEN_PREFERENCES = "update_preferences"  # signal
FROZEN_DECIDE_COMPLIANCE = "decide_compliance"
FROZEN_SIGN_OFF = "sign_off"
FROZEN_COMPLETE_TASK = "complete_task"
FROZEN_SEND_BACK = "send_back"
FROZEN_CANCEL = "cancel"

M = TypeVar("M", bound=BaseModel)


# ----------------------------------------------------------------------------- the case row
@dataclass(frozen=True)
class CaseRow:
    """What a command needs from the read model, copied out so no DB connection is held while
    Temporal is awaited."""

    ref: str
    workflow_id: str
    engine: str
    status: str
    stage: str
    case_type: str
    case_type_version: str | None
    access_roles: tuple[str, ...]
    resolution: str | None = None

    @property
    def is_engine(self) -> bool:
        return self.engine == ENGINE

    @classmethod
    def of(cls, case: Case) -> CaseRow:
        return cls(
            ref=case.ref,
            workflow_id=case.workflow_id,
            engine=case.engine or FROZEN,
            status=case.status,
            stage=case.stage,
            case_type=case.case_type or "client_onboarding",
            case_type_version=case.case_type_version,
            access_roles=tuple(case.access_roles or ()),
            resolution=case.resolution,
        )


def check_stage_access(row: CaseRow, caller: Caller) -> None:
    """403 when the stage is restricted to roles the (staff) caller does not have. Admin passes;
    ``client_app`` keeps whatever its routes allow."""
    if not row.access_roles or caller.role not in STAFF_ROLES:
        return
    if caller.role == Role.OPERATOR:  # read-only oversight (they see every run in Temporal too)
        return
    if caller.role.value in row.access_roles:
        return
    raise HTTPException(
        status_code=status.HTTP_403_FORBIDDEN,
        detail=f"stage {row.stage} is restricted to: {', '.join(row.access_roles)}",
    )


async def load_case(*, session: AsyncSession, ref: str, caller: Caller | None) -> CaseRow:
    """The case's row (404 if unknown), checked against the stage's access roles (403). The
    session's connection is released before returning: callers go on to await Temporal."""
    case = await session.get(Case, ref, populate_existing=True)
    if case is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"no case {ref}")
    row = CaseRow.of(case)
    await session.rollback()  # read only: give the connection back to the pool
    if caller is not None:
        check_stage_access(row, caller)
    return row


def require_commandable(row: CaseRow) -> None:
    """409 for a closed case, or one whose workflow has not started yet."""
    if status_is_closed(row.status):
        raise conflict(f"case {row.ref} is {row.status}; it takes no more commands")
    if row.status == CaseStatus.DRAFT.value:
        raise conflict(f"case {row.ref} has not started yet; retry POST /cases to start it")


async def commandable_case(*, session: AsyncSession, ref: str, caller: Caller | None) -> CaseRow:
    """``load_case`` plus ``require_commandable``."""
    row = await load_case(session=session, ref=ref, caller=caller)
    require_commandable(row)
    return row


def conflict(detail: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_409_CONFLICT, detail=detail)


def not_for_frozen(row: CaseRow, what: str) -> HTTPException:
    return conflict(
        f"case {row.ref} runs on the frozen onboarding workflow, which has no {what}; "
        "only case-engine cases take this command"
    )


# ----------------------------------------------------------------------------- Temporal errors
def unavailable(
    detail: str = "workflow service unavailable; nothing was changed, retry shortly",
) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        detail=detail,
        headers={"Retry-After": RETRY_AFTER},
    )


def translate_rpc(e: RPCError) -> HTTPException:
    """An RPC failure as the caller should see it."""
    if e.status == RPCStatusCode.NOT_FOUND:
        return conflict("the case's workflow is not running (it may have just closed)")
    if e.status == RPCStatusCode.FAILED_PRECONDITION and "failed state" in e.message:
        # the workflow itself is stuck (a bug or bad deploy): not the caller's fault
        return unavailable(
            "the case cannot take commands right now (its workflow task is failing); "
            "operators can see why in the Temporal UI"
        )
    if e.status == RPCStatusCode.FAILED_PRECONDITION:
        return conflict(e.message)
    if e.status == RPCStatusCode.INVALID_ARGUMENT:
        return HTTPException(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, detail=e.message)
    log.warning("temporal rpc failed status=%s", e.status)
    return unavailable()


def _refusal(e: WorkflowUpdateFailedError) -> HTTPException | None:
    cause = e.cause
    if not isinstance(cause, ApplicationError):
        return None
    code = {
        "WrongState": status.HTTP_409_CONFLICT,
        "Forbidden": status.HTTP_403_FORBIDDEN,
        "Invalid": status.HTTP_422_UNPROCESSABLE_CONTENT,
    }.get(cause.type or "", status.HTTP_422_UNPROCESSABLE_CONTENT)
    return HTTPException(status_code=code, detail=cause.message)


@asynccontextmanager
async def temporal_errors() -> AsyncIterator[None]:
    """Around every Temporal call: refusals and outages become HTTP answers (never a 500)."""
    try:
        yield
    except WorkflowUpdateFailedError as e:
        refusal = _refusal(e)
        if refusal is None:
            raise
        raise refusal from e
    except RPCError as e:
        raise translate_rpc(e) from e
    except RPCTimeoutOrCancelledError as e:
        # an update the case did not take within COMMAND_TIMEOUT (its worker down or busy):
        # the server may still deliver it once a worker is back, so say so
        log.warning("temporal call timed out: %s", type(e).__name__)
        raise unavailable(
            "the case did not answer in time (its worker may be down or busy); the command "
            "may still take effect: read the case before you retry"
        ) from e
    except RuntimeError as e:
        # the lazy client's first call failing to connect: "Failed client connect: ..."
        if "connect" in str(e).lower():
            log.warning("temporal unreachable: %s", type(e).__name__)
            raise unavailable() from e
        raise
    except TimeoutError as e:
        raise unavailable("the workflow service did not answer in time; retry shortly") from e


# ----------------------------------------------------------------------------- commands
def as_caller(arg: M, caller: Caller) -> M:
    """The command with ``actor`` and ``role`` set from the authenticated caller (whatever the
    body said), validated again."""
    data = arg.model_dump()
    data.update(actor=caller.label, role=caller.role.value)
    return type(arg).model_validate(data)


async def engine_update(
    *, temporal: Client, row: CaseRow, name: str, arg: BaseModel, caller: Caller
) -> CommandResult:
    """Send update ``name`` to an engine case, as ``caller``."""
    if not row.is_engine:
        raise not_for_frozen(row, f"'{name}' command")
    handle = temporal.get_workflow_handle(row.workflow_id)
    async with temporal_errors():
        return await handle.execute_update(
            name, as_caller(arg, caller), result_type=CommandResult, rpc_timeout=COMMAND_TIMEOUT
        )


async def frozen_update(*, temporal: Client, row: CaseRow, name: str, arg: Any) -> CommandResult:
    """Send update ``name`` to a case of the frozen onboarding workflow."""
    handle = temporal.get_workflow_handle(row.workflow_id)
    async with temporal_errors():
        accepted = await handle.execute_update(
            name, arg, result_type=CommandAccepted, rpc_timeout=COMMAND_TIMEOUT
        )
    return CommandResult.model_validate(accepted.model_dump(mode="json"))


async def frozen_signal(*, temporal: Client, row: CaseRow, name: str, arg: Any) -> None:
    handle = temporal.get_workflow_handle(row.workflow_id)
    async with temporal_errors():
        await handle.signal(name, arg)


async def engine_signal(*, temporal: Client, row: CaseRow, name: str, arg: Any) -> None:
    handle = temporal.get_workflow_handle(row.workflow_id)
    async with temporal_errors():
        await handle.signal(name, arg)


# ----------------------------------------------------------------------------- state
async def frozen_state(handle: WorkflowHandle[Any, Any]) -> CaseState:
    """The frozen onboarding workflow's own ``state`` answer."""
    async with temporal_errors(), asyncio.timeout(QUERY_DEADLINE.total_seconds()):
        return await handle.query(STATE, result_type=CaseState, rpc_timeout=QUERY_TIMEOUT)


async def engine_snapshot(handle: WorkflowHandle[Any, Any]) -> CaseSnapshot:
    """An engine case's ``state`` answer."""
    async with temporal_errors(), asyncio.timeout(QUERY_DEADLINE.total_seconds()):
        return await handle.query(STATE, result_type=CaseSnapshot, rpc_timeout=QUERY_TIMEOUT)


async def snapshot(*, temporal: Client, row: CaseRow) -> CaseSnapshot:
    """``CaseSnapshot`` for any case: the engine's own, or the frozen state adapted."""
    if row.status == CaseStatus.DRAFT.value:
        raise conflict(f"case {row.ref} has not started yet; retry POST /cases to start it")
    handle = temporal.get_workflow_handle(row.workflow_id)
    if row.is_engine:
        return await engine_snapshot(handle)
    return snapshot_from_frozen(await frozen_state(handle), row)


async def case_snapshot(
    *, session: AsyncSession, temporal: Client, ref: str, caller: Caller | None = None
) -> CaseSnapshot:
    """The live snapshot of case ``ref`` (running or closed): 404, 403 (stage access), 409
    (not started), 503 (Temporal away)."""
    row = await load_case(session=session, ref=ref, caller=caller)
    return await snapshot(temporal=temporal, row=row)


# ----------------------------------------------------------------------------- frozen -> snapshot
_FROZEN_OWNERS: dict[str, str] = {
    Stage.COMPLIANCE_REVIEW.value: "compliance_reviewer",
    Stage.SECURITY_REVIEW.value: "security_reviewer",
    Stage.WELCOME.value: "relationship_manager",
}


def _title(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _frozen_actions(state: CaseState) -> list[str]:
    """What the frozen case accepts now, in the engine's vocabulary (the API maps them)."""
    if state.status.is_closed:
        return []
    if state.status == CaseStatus.PAUSED:
        return [RESUME, CANCEL]
    actions = [PAUSE, CANCEL]
    stages = list(state.stages_planned)
    if stages and state.stage in stages and stages.index(state.stage) > 0:
        actions.append(SEND_BACK)
    if state.stage == Stage.DOCUMENT_COLLECTION:
        actions.append(WAIVE_DOCUMENTS)
    if state.stage in (Stage.COMPLIANCE_REVIEW, Stage.FINAL_REVIEW):
        actions.append(DECIDE)
    if any(t.stage == state.stage and not t.done and t.kind == "manual" for t in state.tasks):
        actions.append(COMPLETE_TASK)
    return actions


def snapshot_from_frozen(state: CaseState, row: CaseRow | Case) -> CaseSnapshot:
    """The frozen onboarding workflow's ``CaseState`` in the engine's ``CaseSnapshot`` shape, so
    the console and the portal read one shape for every case."""
    if isinstance(row, Case):
        row = CaseRow.of(row)
    stage = state.stage.value
    budgets: dict[str, float | None] = {}
    for visit in state.history:
        budgets[visit.stage.value] = visit.sla_budget_seconds
    elements = [
        ElementState(
            key=task.key,
            kind="task" if task.kind == "manual" else "automation",
            stage=task.stage.value,
            title=task.title,
            status=(
                ElementStatus.DONE
                if task.done
                else ElementStatus.ACTIVE
                if task.stage == state.stage
                else ElementStatus.PENDING
            ),
            assignee_role=task.assignee_role,
            finished_at=task.done_at,
            done_by=task.done_by,
        )
        for task in state.tasks
    ]
    sla = None
    if state.sla is not None:
        sla = SlaNow(
            state=state.sla.state.value,
            budget_seconds=state.sla.budget_seconds,
            active_seconds=state.sla.active_seconds,
            remaining_seconds=state.sla.remaining_seconds,
            due_at=state.sla.due_at,
            running=state.status not in (CaseStatus.PAUSED,) and not state.status.is_closed,
            escalation_level=state.sla.escalation_level,
        )
    return CaseSnapshot(
        case_ref=state.case_ref,
        case_type="client_onboarding",
        case_type_version=state.playbook_version or row.case_type_version or FROZEN,
        engine=FROZEN,
        status=state.status.value,
        stage=stage,
        stage_title=_title(stage),
        resolution=(
            state.status.value
            if state.status in (CaseStatus.COMPLETED, CaseStatus.REJECTED)
            else None
        ),
        priority=state.priority,
        awaiting=state.awaiting,
        flags=list(state.flags),
        stages=[
            StagePlan(
                key=s.value,
                title=_title(s.value),
                owner_role=_FROZEN_OWNERS.get(s.value, "case_manager"),
                sla_seconds=budgets.get(s.value),
                access=list(row.access_roles) if s == state.stage else [],
            )
            for s in state.stages_planned
        ],
        elements=elements,
        history=[
            StageVisit(
                seq=v.seq,
                stage=v.stage.value,
                entered_at=v.entered_at,
                sla_budget_seconds=v.sla_budget_seconds,
                exited_at=v.exited_at,
                outcome=v.outcome,
                sla_outcome=v.sla_outcome,
                active_seconds=v.active_seconds,
                paused_seconds=v.paused_seconds,
                escalations=v.escalations,
            )
            for v in state.history
        ],
        pauses=[
            PauseRecord(
                seq=p.seq,
                stage=p.stage.value,
                paused_at=p.paused_at,
                paused_by=p.paused_by,
                reason=p.reason,
                resumed_at=p.resumed_at,
                resumed_by=p.resumed_by,
                resume_reason=p.resume_reason,
            )
            for p in state.pauses
        ],
        approvals=[
            Vote(actor=a.reviewer, decision=a.decision, at=a.at, note=a.reason)
            for a in state.approvals
        ],
        approvals_required=state.approvals_required,
        sla=sla,
        paused_by=state.paused_by,
        access=list(row.access_roles),
        allowed_actions=_frozen_actions(state),
        reject_reasons=["other"],
        closure_code=None,
        closure_reason=state.closure_reason,
        account_number=state.account_number,
    )
