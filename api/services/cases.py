"""Case use-cases behind the HTTP routes: start, read, list, and send human steps."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import case as sql_case
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from core.settings import Settings
from schemas.case import (
    CaseInput,
    CaseListItem,
    CasePage,
    CaseState,
    CaseView,
    ClientSummary,
    PauseInterval,
    StageInterval,
    StartCaseRequest,
)
from schemas.commands import CommandAccepted, DocumentsReceived, PauseRequest, ResumeRequest
from schemas.enums import CaseStatus, ClientTier, ClientType, SlaState, Stage
from store.cases import insert_draft_case
from store.models import Case, CasePauseRow, StageIntervalRow
from workflows import search_attributes as sa
from workflows.onboarding import OnboardingCaseWorkflow

_REF_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O/1/I/L/U: read out over the phone


def new_case_ref() -> str:
    return "C-" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(10))


def request_fingerprint(body: StartCaseRequest) -> str:
    """Stable hash of what was asked, to tell a retry from a different request."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class StartResult:
    view: CaseView
    created: bool


async def start_case(
    *,
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    body: StartCaseRequest,
    idempotency_key: str | None,
    requested_by: str,
) -> StartResult:
    """Record the case as a draft, then start its workflow. Retries return the same case.

    The draft row is written first so that a crash between the two steps loses nothing: the
    client's retry (same reference or Idempotency-Key) finds the draft and starts the workflow.
    """
    fingerprint = request_fingerprint(body)
    ref = body.reference
    if idempotency_key is not None:
        known = await session.scalar(select(Case).where(Case.idempotency_key == idempotency_key))
        if known is not None:
            if ref is not None and ref != known.ref:
                raise _conflict("Idempotency-Key was already used for another case reference")
            ref = known.ref
    ref = ref or new_case_ref()
    inserted = await session.scalar(
        insert_draft_case(
            ref=ref,
            client=body.client,
            requested_by=requested_by,
            request_hash=fingerprint,
            idempotency_key=idempotency_key,
        ).returning(Case.ref)
    )
    await session.commit()
    created = inserted is not None
    case = await session.get(Case, ref, populate_existing=True)
    if case is None and idempotency_key is not None:
        # A concurrent request with the same key won the insert under its own generated ref.
        case = await session.scalar(select(Case).where(Case.idempotency_key == idempotency_key))
    if case is None:
        raise _conflict("that Idempotency-Key is already in use by another case")
    ref = case.ref
    if not created:
        if case.request_hash != fingerprint:
            raise _conflict(
                f"reference {ref} is already used by a different request; "
                "send the same body to retry, or use a new reference"
            )
        if idempotency_key is not None and case.idempotency_key not in (None, idempotency_key):
            raise _conflict("that reference was created with a different Idempotency-Key")

    if case.status == CaseStatus.DRAFT.value:
        await _start_workflow(temporal=temporal, settings=settings, case=case, profile=body)
        await session.execute(
            update(Case)
            .where(Case.ref == ref, Case.status == CaseStatus.DRAFT.value)
            .values(status=CaseStatus.OPEN.value)
        )
        await session.commit()
    return StartResult(
        view=await get_case(session=session, settings=settings, ref=ref), created=created
    )


async def _start_workflow(
    *, temporal: Client, settings: Settings, case: Case, profile: StartCaseRequest
) -> None:
    """Start once: an id conflict with a running case attaches to it; a closed one is kept."""
    client = profile.client
    with contextlib.suppress(WorkflowAlreadyStartedError):
        # already ran (and closed): the case exists, nothing to start
        await temporal.start_workflow(
            OnboardingCaseWorkflow.run,
            CaseInput(case_ref=case.ref, client=client, requested_by=case.requested_by),
            id=case.workflow_id,
            task_queue=settings.temporal_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.CASE_REF, case.ref),
                    SearchAttributePair(sa.CASE_STAGE, Stage.ACKNOWLEDGEMENT.value),
                    SearchAttributePair(sa.CASE_STATUS, CaseStatus.OPEN.value),
                    SearchAttributePair(sa.CLIENT_TYPE, client.client_type.value),
                    SearchAttributePair(sa.CLIENT_TIER, client.tier.value),
                    SearchAttributePair(sa.SLA_STATE, SlaState.ON_TRACK.value),
                ]
            ),
        )


async def get_case(*, session: AsyncSession, settings: Settings, ref: str) -> CaseView:
    """The read model's view of one case; 404 if we never saw it."""
    case = await session.get(Case, ref, populate_existing=True)
    if case is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"no case {ref}")
    rows = (
        await session.scalars(
            select(StageIntervalRow)
            .where(StageIntervalRow.case_ref == ref)
            .order_by(StageIntervalRow.seq)
        )
    ).all()
    pauses = (
        await session.scalars(
            select(CasePauseRow).where(CasePauseRow.case_ref == ref).order_by(CasePauseRow.seq)
        )
    ).all()
    return CaseView(
        reference=case.ref,
        status=CaseStatus(case.status),
        stage=Stage(case.stage),
        client=ClientSummary(
            name=case.client_name,
            client_type=ClientType(case.client_type),
            tier=ClientTier(case.client_tier),
            country=case.country,
        ),
        priority=case.priority,
        sla_state=SlaState(case.sla_state) if case.sla_state else None,
        playbook_version=case.playbook_version,
        created_at=case.created_at,
        updated_at=case.updated_at,
        closed_at=case.closed_at,
        closure_reason=case.closure_reason,
        ever_paused=case.ever_paused,
        workflow_id=case.workflow_id,
        temporal_ui_url=(
            f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}"
            f"/workflows/{case.workflow_id}"
        ),
        stages=[StageInterval.model_validate(r, from_attributes=True) for r in rows],
        pauses=[PauseInterval.model_validate(p, from_attributes=True) for p in pauses],
    )


async def list_cases(
    *,
    session: AsyncSession,
    status_filter: list[CaseStatus] | None,
    stage: list[Stage] | None,
    client_type: ClientType | None,
    tier: ClientTier | None,
    sla_state: list[SlaState] | None = None,
    limit: int,
    offset: int,
) -> CasePage:
    """Newest first; every filter optional."""
    conditions: list[Any] = []
    if status_filter:
        conditions.append(Case.status.in_([s.value for s in status_filter]))
    if stage:
        conditions.append(Case.stage.in_([s.value for s in stage]))
    if client_type:
        conditions.append(Case.client_type == client_type.value)
    if tier:
        conditions.append(Case.client_tier == tier.value)
    if sla_state:
        conditions.append(Case.sla_state.in_([s.value for s in sla_state]))
    total = await session.scalar(select(func.count()).select_from(Case).where(*conditions)) or 0
    rows = (
        await session.scalars(
            select(Case)
            .where(*conditions)
            .order_by(Case.created_at.desc(), Case.ref)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return CasePage(
        items=[
            CaseListItem(
                reference=c.ref,
                status=CaseStatus(c.status),
                stage=Stage(c.stage),
                client_name=c.client_name,
                client_type=ClientType(c.client_type),
                tier=ClientTier(c.client_tier),
                sla_state=SlaState(c.sla_state) if c.sla_state else None,
                created_at=c.created_at,
                updated_at=c.updated_at,
            )
            for c in rows
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


# ---------------------------------------------------------------------- commands
async def running_case(
    *, session: AsyncSession, temporal: Client, ref: str, closed_ok: bool = False
) -> WorkflowHandle[Any, Any]:
    """Handle of a case's workflow: 404 if unknown, 409 if not started, and 409 if closed
    unless ``closed_ok`` (a closed workflow still answers queries, it takes no commands)."""
    case = await session.get(Case, ref)
    if case is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"no case {ref}")
    if CaseStatus(case.status).is_closed and not closed_ok:
        raise _conflict(f"case {ref} is {case.status}; it takes no more commands")
    if case.status == CaseStatus.DRAFT.value:
        raise _conflict(f"case {ref} has not started yet; retry POST /cases to start it")
    return temporal.get_workflow_handle(case.workflow_id)


async def live_state(handle: WorkflowHandle[Any, Any]) -> CaseState:
    """The workflow's own view (authoritative; the read model may lag by a moment)."""
    try:
        return await handle.query(OnboardingCaseWorkflow.state)
    except RPCError as e:
        raise _translate_rpc(e) from e


async def update_case(
    *, session: AsyncSession, temporal: Client, ref: str, update: Any, arg: Any
) -> CommandAccepted:
    """Send a human step to a running case as a workflow update (404/409 as ``running_case``);
    the validator's refusal becomes 409 with the workflow's own words."""
    handle = await running_case(session=session, temporal=temporal, ref=ref)
    try:
        result: CommandAccepted = await handle.execute_update(update, arg)
        return result
    except WorkflowUpdateFailedError as e:
        cause = e.cause
        if isinstance(cause, ApplicationError) and cause.type == "WrongState":
            raise _conflict(cause.message) from e
        if isinstance(cause, ApplicationError):
            raise HTTPException(
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, detail=cause.message
            ) from e
        raise
    except RPCError as e:
        raise _translate_rpc(e) from e


def _translate_rpc(e: RPCError) -> Exception:
    if e.status == RPCStatusCode.NOT_FOUND:
        return _conflict("the case's workflow is not running (it may have just closed)")
    if e.status == RPCStatusCode.FAILED_PRECONDITION and "failed state" in e.message:
        # the workflow itself is stuck (a bug or bad deploy): not the caller's fault
        return HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the case cannot take commands right now (its workflow task is failing); "
            "operators can see why in the Temporal UI",
        )
    if e.status == RPCStatusCode.FAILED_PRECONDITION:
        return _conflict(e.message)
    return e


def _conflict(detail: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_409_CONFLICT, detail=detail)


# ---------------------------------------------------------------- shared commands
# The JSON API and the console both send these; the pre-checks live here so the two cannot
# drift apart (a signal has no validator, so the 409s must be decided before sending).
async def pause(
    *, session: AsyncSession, temporal: Client, ref: str, body: PauseRequest
) -> CommandAccepted:
    """Pause a running case: 409 if it is already paused."""
    handle = await running_case(session=session, temporal=temporal, ref=ref)
    state = await live_state(handle)
    if state.status == CaseStatus.PAUSED:
        raise _conflict(f"case {ref} is already paused by {state.paused_by}")
    await handle.signal(OnboardingCaseWorkflow.pause, body)
    return CommandAccepted(
        case_ref=ref,
        stage=state.stage,
        status=CaseStatus.PAUSED.value,
        message=f"paused by {body.actor}; the SLA clock is stopped",
    )


async def resume(
    *, session: AsyncSession, temporal: Client, ref: str, body: ResumeRequest
) -> CommandAccepted:
    """Resume a paused case: 409 unless it is paused."""
    handle = await running_case(session=session, temporal=temporal, ref=ref)
    state = await live_state(handle)
    if state.status != CaseStatus.PAUSED:
        raise _conflict(f"case {ref} is not paused")
    await handle.signal(OnboardingCaseWorkflow.resume, body)
    return CommandAccepted(
        case_ref=ref,
        stage=state.stage,
        status=CaseStatus.OPEN.value,
        message=f"resumed by {body.actor}",
    )


async def documents_received(
    *, session: AsyncSession, temporal: Client, ref: str, body: DocumentsReceived
) -> CommandAccepted:
    """Tell a case its documents are in: 409 unless it is collecting documents."""
    handle = await running_case(session=session, temporal=temporal, ref=ref)
    state = await live_state(handle)
    if state.stage != Stage.DOCUMENT_COLLECTION:
        raise _conflict(f"case {ref} is at {state.stage.value}, not document_collection")
    await handle.signal(OnboardingCaseWorkflow.documents_received, body)
    return CommandAccepted(
        case_ref=ref,
        stage=state.stage,
        status=state.status.value,
        message=(
            "documents accepted by waiver; the case will move on"
            if body.waive_verification
            else "documents will be checked again"
        ),
    )


# ---------------------------------------------------------------- sorted queue (console)
CASE_SORTS = ("created", "updated", "priority", "stage")
_PRIORITY_RANK = {"normal": 0, "high": 1, "urgent": 2, "critical": 3}
_STAGE_RANK = {stage.value: i for i, stage in enumerate(Stage)}


async def query_cases(
    *,
    session: AsyncSession,
    status_filter: list[CaseStatus] | None = None,
    stage: list[Stage] | None = None,
    client_type: ClientType | None = None,
    tier: ClientTier | None = None,
    sla_state: list[SlaState] | None = None,
    sort: str = "created",
    descending: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Case], int]:
    """Read-model rows for people's queues: like ``list_cases`` but sortable, and the rows
    themselves (priority included). Ties break on the reference so pages never overlap."""
    if sort not in CASE_SORTS:
        raise ValueError(f"unknown sort {sort!r}")
    conditions: list[Any] = []
    if status_filter:
        conditions.append(Case.status.in_([s.value for s in status_filter]))
    if stage:
        conditions.append(Case.stage.in_([s.value for s in stage]))
    if client_type:
        conditions.append(Case.client_type == client_type.value)
    if tier:
        conditions.append(Case.client_tier == tier.value)
    if sla_state:
        conditions.append(Case.sla_state.in_([s.value for s in sla_state]))
    key: Any = {
        "created": Case.created_at,
        "updated": Case.updated_at,
        "priority": sql_case(_PRIORITY_RANK, value=Case.priority, else_=-1),
        "stage": sql_case(_STAGE_RANK, value=Case.stage, else_=-1),
    }[sort]
    order = [key.desc() if descending else key.asc()]
    if sort in ("priority", "stage"):
        order.append(Case.updated_at.desc())
    total = await session.scalar(select(func.count()).select_from(Case).where(*conditions)) or 0
    rows = (
        await session.scalars(
            select(Case).where(*conditions).order_by(*order, Case.ref).limit(limit).offset(offset)
        )
    ).all()
    return list(rows), total
