"""Case use-cases behind the HTTP routes: start, read, list, and send human steps.

Workflows are addressed by name (``schemas.contracts``), never by importing workflow code. New
cases run on the case engine (``CaseWorkflow``); rows of the frozen onboarding workflow
(``engine = 'onboarding-v1'``) keep getting its commands. ``api.services.engine`` holds the
dispatch and the error mapping.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import HTTPException, status
from pydantic import BaseModel, ValidationError
from sqlalchemy import case as sql_case
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.deps import Caller
from api.services import engine as eng
from core.settings import Role, Settings
from playbooks.launch import engine_workflow_id, start_engine_workflow
from playbooks.registry import (
    CaseTypeRegistry,
    UnknownCaseType,
    pinned_calendars,
    pinned_subprocess_types,
)
from schemas.calendar import PinnedCalendar
from schemas.case import (
    DEFAULT_CASE_TYPE,
    CaseInput,
    CaseListItem,
    CasePage,
    CaseState,
    CaseView,
    ClientSummary,
    EtaView,
    PauseView,
    StageVisitView,
    StartCaseRequest,
)
from schemas.casedata import CaseDataError, validate_case_data
from schemas.casetype import CaseType
from schemas.commands import (
    CancelCase,
    CompleteTask,
    ComplianceDecision,
    DocumentsReceived,
    FinalSignOff,
    PauseRequest,
    ResumeRequest,
    SendBack,
)
from schemas.contracts import FROZEN_ONBOARDING_WORKFLOW
from schemas.engine_commands import (
    CancelCaseCmd,
    CommandResult,
    CompleteTaskCmd,
    Decide,
    DocumentsUploaded,
    PauseCase,
    ResumeCase,
    ReviewDocument,
    SendBackCmd,
    WaiveDocuments,
)
from schemas.enums import CaseStatus, ClientTier, ClientType, Decision, SlaState, Stage
from store.cases import insert_draft_case
from store.models import Case, CasePauseRow, StageIntervalRow
from workflows import search_attributes as sa

M = TypeVar("M", bound=BaseModel)

_REF_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O/1/I/L/U: read out over the phone


def new_case_ref() -> str:
    return "C-" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(10))


def request_fingerprint(body: StartCaseRequest) -> str:
    """Stable hash of what was asked, to tell a retry from a different request. A default
    onboarding request hashes as it did before case types existed."""
    dumped = body.model_dump(mode="json")
    if dumped.get("case_type") == DEFAULT_CASE_TYPE and not dumped.get("data"):
        dumped.pop("case_type", None)
        dumped.pop("data", None)
    canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def resolve_case_type(
    registry: CaseTypeRegistry, body: StartCaseRequest
) -> tuple[CaseType, dict[str, Any]]:
    """The startable case type and the clean data, or a 422 naming what is wrong."""
    try:
        case_type = registry.get(body.case_type, startable_only=True)
    except UnknownCaseType as e:
        raise HTTPException(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": ["body", "case_type"],
                    "msg": str(e),
                    "type": "unknown_case_type",
                    "known": list(e.known),
                }
            ],
        ) from e
    try:
        data = validate_case_data(case_type, body.data)
    except CaseDataError as e:
        raise HTTPException(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": list(err.get("loc", ())),
                    "msg": err.get("msg", ""),
                    "type": err.get("type", ""),
                }
                for err in e.errors
            ],
        ) from e
    return case_type, data


@dataclass(frozen=True)
class StartResult:
    view: CaseView
    created: bool


async def start_case(
    *,
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    registry: CaseTypeRegistry,
    body: StartCaseRequest,
    idempotency_key: str | None,
    requested_by: str,
) -> StartResult:
    """Record the case as a draft, then start its workflow. Retries return the same case.

    The draft row is written first so that a crash between the two steps loses nothing: the
    client's retry (same reference or Idempotency-Key) finds the draft and starts the workflow.
    """
    case_type, data = resolve_case_type(registry, body)
    fingerprint = request_fingerprint(body)
    ref = body.reference
    if idempotency_key is not None:
        known = await session.scalar(select(Case).where(Case.idempotency_key == idempotency_key))
        if known is not None:
            if ref is not None and ref != known.ref:
                raise _conflict("Idempotency-Key was already used for another case reference")
            ref = known.ref
    ref = ref or new_case_ref()
    first = case_type.stages[0]
    inserted = await session.scalar(
        insert_draft_case(
            ref=ref,
            client=body.client,
            requested_by=requested_by,
            request_hash=fingerprint,
            idempotency_key=idempotency_key,
            case_type=case_type.name,
            case_type_version=case_type.version,
            engine=eng.ENGINE,
            data=data,
            workflow_id=engine_workflow_id(case_type, ref),
            first_stage=first.key,
            access_roles=list(first.access),
        ).returning(Case)
    )
    await session.commit()
    created = inserted is not None
    # a new row comes back whole from RETURNING: read it again only when it already existed
    case = inserted or await session.get(Case, ref, populate_existing=True)
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
        row = eng.CaseRow.of(case)
        requested = case.requested_by
        await session.rollback()  # hold no connection while Temporal is awaited
        children = (
            pinned_subprocess_types(
                registry, case_type, client=body.client.model_dump(mode="json"), data=data
            )
            if row.is_engine
            else {}
        )
        async with eng.temporal_errors():
            if row.is_engine:
                await _start_engine_workflow(
                    temporal=temporal,
                    settings=settings,
                    row=row,
                    case_type=case_type,
                    children=children,
                    calendars=pinned_calendars(
                        registry, [case_type, *children.values()], datetime.now(UTC)
                    ),
                    body=body,
                    data=data,
                    requested_by=requested,
                )
            else:  # a draft written before the engine: its own (frozen) workflow starts it
                await _start_frozen_workflow(
                    temporal=temporal, settings=settings, row=row, body=body, requested_by=requested
                )
        await session.execute(
            update(Case)
            .where(Case.ref == ref, Case.status == CaseStatus.DRAFT.value)
            .values(status=CaseStatus.OPEN.value)
        )
        view = await get_case(session=session, settings=settings, ref=ref)  # same transaction
        await session.commit()
        return StartResult(view=view, created=created)
    return StartResult(
        view=await get_case(session=session, settings=settings, ref=ref), created=created
    )


def _attributes(
    row: eng.CaseRow, body: StartCaseRequest, *, stage: str, case_type: str | None
) -> TypedSearchAttributes:
    client = body.client
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(sa.CASE_REF, row.ref),
        SearchAttributePair(sa.CASE_STAGE, stage),
        SearchAttributePair(sa.CASE_STATUS, CaseStatus.OPEN.value),
        SearchAttributePair(sa.CLIENT_TYPE, client.client_type.value),
        SearchAttributePair(sa.CLIENT_TIER, client.tier.value),
        SearchAttributePair(sa.SLA_STATE, SlaState.ON_TRACK.value),
    ]
    if case_type is not None:
        pairs.append(SearchAttributePair(sa.CASE_TYPE, case_type))
    return TypedSearchAttributes(pairs)


async def _start_engine_workflow(
    *,
    temporal: Client,
    settings: Settings,
    row: eng.CaseRow,
    case_type: CaseType,
    children: dict[str, CaseType],
    calendars: dict[str, PinnedCalendar],
    body: StartCaseRequest,
    data: dict[str, Any],
    requested_by: str,
) -> None:
    """Start once: an id conflict with a running case attaches to it; a closed one is kept
    (``playbooks.launch``, shared with activities that open cases)."""
    await start_engine_workflow(
        temporal,
        task_queue=settings.temporal_task_queue,
        ref=row.ref,
        workflow_id=row.workflow_id,
        case_type=case_type,
        client=body.client,
        data=data,
        requested_by=requested_by,
        children=children,
        calendars=calendars,
    )


async def _start_frozen_workflow(
    *,
    temporal: Client,
    settings: Settings,
    row: eng.CaseRow,
    body: StartCaseRequest,
    requested_by: str,
) -> None:
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await temporal.start_workflow(
            FROZEN_ONBOARDING_WORKFLOW,
            CaseInput(case_ref=row.ref, client=body.client, requested_by=requested_by),
            id=row.workflow_id,
            task_queue=settings.temporal_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=_attributes(
                row, body, stage=Stage.ACKNOWLEDGEMENT.value, case_type=None
            ),
        )


async def get_case(
    *, session: AsyncSession, settings: Settings, ref: str, caller: Caller | None = None
) -> CaseView:
    """The read model's view of one case; 404 if we never saw it, 403 if its stage is
    restricted to roles the (staff) caller lacks."""
    case = await session.get(Case, ref, populate_existing=True)
    if case is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=f"no case {ref}")
    if caller is not None:
        eng.check_stage_access(eng.CaseRow.of(case), caller)
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
        status=case.status,
        stage=case.stage,
        case_type=case.case_type or DEFAULT_CASE_TYPE,
        case_type_version=case.case_type_version,
        engine=case.engine or eng.FROZEN,
        resolution=case.resolution,
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
        eta=(
            EtaView(
                at=case.eta_at,
                p10=case.eta_p10_at,
                p90=case.eta_p90_at,
                basis=case.eta_basis or "budgets",
            )
            if case.eta_at is not None
            else None
        ),
        workflow_id=case.workflow_id,
        temporal_ui_url=(
            f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}"
            f"/workflows/{case.workflow_id}"
        ),
        stages=[StageVisitView.model_validate(r, from_attributes=True) for r in rows],
        pauses=[PauseView.model_validate(p, from_attributes=True) for p in pauses],
    )


def _filters(
    *,
    status_filter: Sequence[str] | None,
    stage: Sequence[str] | None,
    client_type: ClientType | None,
    tier: ClientTier | None,
    sla_state: Sequence[str] | None,
    case_type: Sequence[str] | str | None = None,
) -> list[Any]:
    conditions: list[Any] = []
    if status_filter:
        conditions.append(Case.status.in_([str(s) for s in status_filter]))
    if stage:
        conditions.append(Case.stage.in_([str(s) for s in stage]))
    if client_type:
        conditions.append(Case.client_type == client_type.value)
    if tier:
        conditions.append(Case.client_tier == tier.value)
    if sla_state:
        conditions.append(Case.sla_state.in_([str(s) for s in sla_state]))
    if case_type:
        names = [case_type] if isinstance(case_type, str) else [str(c) for c in case_type]
        conditions.append(Case.case_type.in_(names))
    return conditions


async def list_cases(
    *,
    session: AsyncSession,
    status_filter: Sequence[str] | None,
    stage: Sequence[str] | None,
    client_type: ClientType | None,
    tier: ClientTier | None,
    sla_state: Sequence[str] | None = None,
    case_type: Sequence[str] | None = None,
    limit: int,
    offset: int,
) -> CasePage:
    """Newest first; every filter optional."""
    conditions = _filters(
        status_filter=status_filter,
        stage=stage,
        client_type=client_type,
        tier=tier,
        sla_state=sla_state,
        case_type=case_type,
    )
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
                status=c.status,
                stage=c.stage,
                case_type=c.case_type or DEFAULT_CASE_TYPE,
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
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    closed_ok: bool = False,
    caller: Caller | None = None,
) -> WorkflowHandle[Any, Any]:
    """Handle of a case's workflow: 404 if unknown, 409 if not started, and 409 if closed
    unless ``closed_ok`` (a closed workflow still answers queries, it takes no commands)."""
    row = await eng.load_case(session=session, ref=ref, caller=caller)
    if closed_ok:
        if row.status == CaseStatus.DRAFT.value:
            raise _conflict(f"case {ref} has not started yet; retry POST /cases to start it")
    else:
        eng.require_commandable(row)
    return temporal.get_workflow_handle(row.workflow_id)


async def live_state(handle: WorkflowHandle[Any, Any]) -> CaseState:
    """The frozen onboarding workflow's own view (``CaseState``). For any case, engine or
    frozen, use ``api.services.engine.case_snapshot`` (``CaseSnapshot``)."""
    return await eng.frozen_state(handle)


async def update_case(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    update: Any,
    arg: Any,
    caller: Caller | None = None,
) -> CommandResult:
    """Send an update (by name) to a case of the frozen onboarding workflow (404/409 as
    ``running_case``); the validator's refusal becomes 409 with the workflow's own words.
    Engine cases take their commands through the functions below."""
    row = await eng.commandable_case(session=session, ref=ref, caller=caller)
    name = update if isinstance(update, str) else getattr(update, "__name__", str(update))
    return await eng.frozen_update(temporal=temporal, row=row, name=name, arg=arg)


def _conflict(detail: str) -> HTTPException:
    return eng.conflict(detail)


def _command(model: type[M], **fields: Any) -> M:
    """A command model built from a request's parts; a problem is a 422, not a 500."""
    try:
        return model.model_validate(fields)
    except ValidationError as e:
        raise HTTPException(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {"loc": ["body", *map(str, err["loc"])], "msg": err["msg"], "type": err["type"]}
                for err in e.errors(include_url=False, include_input=False)
            ],
        ) from e


def _console_caller(actor: str) -> Caller:
    """Console calls made before it passed its signed-in user (case-manager actions only)."""
    return Caller(role=Role.CASE_MANAGER, key_id="console", username=actor)


def _identity(caller: Caller) -> dict[str, str]:
    return {"actor": caller.label, "role": caller.role.value}


# ---------------------------------------------------------------- shared commands
# The JSON API and the console both send these, so the two cannot drift apart. Each loads the
# row (404, 403 stage access, 409 closed/draft), then dispatches on its engine.
async def pause(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    body: PauseRequest,
    caller: Caller | None = None,
) -> CommandResult:
    """Pause a running case: 409 if it is already paused."""
    caller = caller or _console_caller(body.actor)
    row = await eng.commandable_case(session=session, ref=ref, caller=caller)
    if row.is_engine:
        cmd = _command(PauseCase, reason=body.reason, **_identity(caller))
        return await eng.engine_update(
            temporal=temporal, row=row, name=eng.PAUSE, arg=cmd, caller=caller
        )
    handle = temporal.get_workflow_handle(row.workflow_id)
    state = await eng.frozen_state(handle)  # a signal has no validator: check first
    if state.status == CaseStatus.PAUSED:
        raise _conflict(f"case {ref} is already paused by {state.paused_by}")
    await eng.frozen_signal(temporal=temporal, row=row, name=eng.FROZEN_PAUSE, arg=body)
    return CommandResult(
        case_ref=ref,
        stage=state.stage.value,
        status=CaseStatus.PAUSED.value,
        message=f"paused by {body.actor}; the SLA clock is stopped",
    )


async def resume(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    body: ResumeRequest,
    caller: Caller | None = None,
) -> CommandResult:
    """Resume a paused case: 409 unless it is paused."""
    caller = caller or _console_caller(body.actor)
    row = await eng.commandable_case(session=session, ref=ref, caller=caller)
    if row.is_engine:
        cmd = _command(ResumeCase, reason=body.reason, **_identity(caller))
        return await eng.engine_update(
            temporal=temporal, row=row, name=eng.RESUME, arg=cmd, caller=caller
        )
    handle = temporal.get_workflow_handle(row.workflow_id)
    state = await eng.frozen_state(handle)
    if state.status != CaseStatus.PAUSED:
        raise _conflict(f"case {ref} is not paused")
    await eng.frozen_signal(temporal=temporal, row=row, name=eng.FROZEN_RESUME, arg=body)
    return CommandResult(
        case_ref=ref,
        stage=state.stage.value,
        status=CaseStatus.OPEN.value,
        message=f"resumed by {body.actor}",
    )


async def documents_received(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    body: DocumentsReceived,
    caller: Caller | None = None,
) -> CommandResult:
    """Tell a case its documents are in (or, with ``waive_verification``, accept them as seen).

    Engine cases: a waiver is the ``waive_documents`` update (409 from its validator); otherwise
    the ``documents_uploaded`` signal. Frozen cases: 409 unless collecting documents."""
    caller = caller or _console_caller(body.actor)
    row = await eng.commandable_case(session=session, ref=ref, caller=caller)
    if row.is_engine:
        if body.waive_verification:
            cmd = _command(WaiveDocuments, note=body.note, **_identity(caller))
            return await eng.engine_update(
                temporal=temporal, row=row, name=eng.WAIVE_DOCUMENTS, arg=cmd, caller=caller
            )
        signal = DocumentsUploaded(actor=caller.label, document_ids=list(body.document_ids))
        await eng.engine_signal(temporal=temporal, row=row, name=eng.DOCUMENTS_UPLOADED, arg=signal)
        return CommandResult(
            case_ref=ref,
            stage=row.stage,
            status=row.status,
            message="documents will be checked again",
        )
    handle = temporal.get_workflow_handle(row.workflow_id)
    state = await eng.frozen_state(handle)
    if state.stage != Stage.DOCUMENT_COLLECTION:
        raise _conflict(f"case {ref} is at {state.stage.value}, not document_collection")
    await eng.frozen_signal(
        temporal=temporal, row=row, name=eng.FROZEN_DOCUMENTS_RECEIVED, arg=body
    )
    return CommandResult(
        case_ref=ref,
        stage=state.stage.value,
        status=state.status.value,
        message=(
            "documents accepted by waiver; the case will move on"
            if body.waive_verification
            else "documents will be checked again"
        ),
    )


async def waive_documents(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    caller: Caller,
    note: str,
    element: str | None = None,
) -> CommandResult:
    """Accept the documents as seen (audited). Frozen cases: ``documents_received`` with
    ``waive_verification``."""
    row = await eng.commandable_case(session=session, ref=ref, caller=caller)
    if row.is_engine:
        cmd = _command(WaiveDocuments, note=note, element=element, **_identity(caller))
        return await eng.engine_update(
            temporal=temporal, row=row, name=eng.WAIVE_DOCUMENTS, arg=cmd, caller=caller
        )
    return await documents_received(
        session=session,
        temporal=temporal,
        ref=ref,
        body=DocumentsReceived(actor=caller.label, note=note, waive_verification=True),
        caller=caller,
    )


async def review_document(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    caller: Caller,
    document_id: str,
    decision: str,
    note: str | None,
    element: str | None = None,
) -> CommandResult:
    """Accept or reject a document waiting for review (engine cases; 409 otherwise)."""
    row = await eng.commandable_case(session=session, ref=ref, caller=caller)
    if not row.is_engine:
        raise _conflict(f"case {ref} runs the first onboarding workflow; waive its documents")
    cmd = _command(
        ReviewDocument,
        document_id=document_id,
        decision=decision,
        note=note,
        element=element,
        **_identity(caller),
    )
    return await eng.engine_update(
        temporal=temporal, row=row, name=eng.REVIEW_DOCUMENT, arg=cmd, caller=caller
    )


async def _either(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    caller: Caller,
    engine: tuple[str, Callable[[], BaseModel]],
    frozen: tuple[str, Callable[[], BaseModel]],
) -> CommandResult:
    """Load the case (404/403/409), then send the engine's update or the frozen workflow's,
    built only for the engine the case runs on."""
    row = await eng.commandable_case(session=session, ref=ref, caller=caller)
    if row.is_engine:
        name, build = engine
        return await eng.engine_update(
            temporal=temporal, row=row, name=name, arg=build(), caller=caller
        )
    name, build = frozen
    return await eng.frozen_update(temporal=temporal, row=row, name=name, arg=build())


async def complete_task(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    task_key: str,
    caller: Caller,
    note: str | None = None,
    outcome: str | None = None,
    actor: str | None = None,
) -> CommandResult:
    """Complete a task of the current stage (409 if it is not open now)."""
    return await _either(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        engine=(
            eng.COMPLETE_TASK,
            lambda: _command(
                CompleteTaskCmd, task_key=task_key, note=note, outcome=outcome, **_identity(caller)
            ),
        ),
        frozen=(
            eng.FROZEN_COMPLETE_TASK,
            lambda: _command(
                CompleteTask, task_key=task_key, actor=actor or caller.label, note=note
            ),
        ),
    )


async def decide(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    caller: Caller,
    decision: str,
    element: str | None = None,
    reason_code: str | None = None,
    note: str | None = None,
) -> CommandResult:
    """Approve or reject the case's current approval, as ``caller``.

    Frozen cases: compliance review takes the decision (``decide_compliance``); final review
    takes an approval as the sign-off."""
    row = await eng.commandable_case(session=session, ref=ref, caller=caller)
    if row.is_engine:
        cmd = _command(
            Decide,
            decision=decision,
            element=element,
            reason_code=reason_code,
            note=note,
            **_identity(caller),
        )
        return await eng.engine_update(
            temporal=temporal, row=row, name=eng.DECIDE, arg=cmd, caller=caller
        )
    if row.stage == Stage.FINAL_REVIEW.value:
        if decision != "approve":
            raise _conflict("final review is signed off, not rejected; cancel the case instead")
        return await eng.frozen_update(
            temporal=temporal,
            row=row,
            name=eng.FROZEN_SIGN_OFF,
            arg=FinalSignOff(reviewer=caller.label, note=note),
        )
    return await eng.frozen_update(
        temporal=temporal,
        row=row,
        name=eng.FROZEN_DECIDE_COMPLIANCE,
        arg=_command(ComplianceDecision, decision=decision, reviewer=caller.label, reason=note),
    )


# The onboarding routes name client_onboarding's elements, so a decision sent to the wrong
# stage is refused (409) rather than landing on whichever approval is open.
COMPLIANCE_ELEMENT = "compliance_decision"
SIGN_OFF_ELEMENT = "final_sign_off"


async def compliance_decision(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    caller: Caller,
    decision: Decision,
    reason: str | None = None,
    reviewer: str | None = None,
) -> CommandResult:
    """The onboarding compliance decision. Engine cases: ``decide`` (a rejection is reason code
    ``other`` with the reason as its note)."""
    row = await eng.commandable_case(session=session, ref=ref, caller=caller)
    if row.is_engine:
        if decision == Decision.APPROVE:
            cmd = _command(
                Decide,
                decision="approve",
                element=COMPLIANCE_ELEMENT,
                note=reason,
                **_identity(caller),
            )
        else:
            cmd = _command(
                Decide,
                decision="reject",
                element=COMPLIANCE_ELEMENT,
                reason_code="other",
                note=reason,
                **_identity(caller),
            )
        return await eng.engine_update(
            temporal=temporal, row=row, name=eng.DECIDE, arg=cmd, caller=caller
        )
    frozen = _command(
        ComplianceDecision, decision=decision, reviewer=reviewer or caller.label, reason=reason
    )
    return await eng.frozen_update(
        temporal=temporal, row=row, name=eng.FROZEN_DECIDE_COMPLIANCE, arg=frozen
    )


async def final_review(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    caller: Caller,
    note: str | None = None,
    reviewer: str | None = None,
) -> CommandResult:
    """Final sign-off. Engine cases: ``decide`` approve."""
    row = await eng.commandable_case(session=session, ref=ref, caller=caller)
    if row.is_engine:
        cmd = _command(
            Decide, decision="approve", element=SIGN_OFF_ELEMENT, note=note, **_identity(caller)
        )
        return await eng.engine_update(
            temporal=temporal, row=row, name=eng.DECIDE, arg=cmd, caller=caller
        )
    frozen = _command(FinalSignOff, reviewer=reviewer or caller.label, note=note)
    return await eng.frozen_update(temporal=temporal, row=row, name=eng.FROZEN_SIGN_OFF, arg=frozen)


async def send_back(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    caller: Caller,
    to_stage: str,
    reason: str,
    actor: str | None = None,
) -> CommandResult:
    """Return the case to an earlier stage, whose SLA starts afresh."""
    return await _either(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        engine=(
            eng.SEND_BACK,
            lambda: _command(SendBackCmd, to_stage=to_stage, reason=reason, **_identity(caller)),
        ),
        frozen=(
            eng.FROZEN_SEND_BACK,
            lambda: _command(
                SendBack, to_stage=to_stage, actor=actor or caller.label, reason=reason
            ),
        ),
    )


async def cancel(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    caller: Caller,
    closure_code: str,
    reason: str | None = None,
    actor: str | None = None,
) -> CommandResult:
    """Cancel at any stage with a closure code."""
    return await _either(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        engine=(
            eng.CANCEL,
            lambda: _command(
                CancelCaseCmd, closure_code=closure_code, reason=reason, **_identity(caller)
            ),
        ),
        frozen=(
            eng.FROZEN_CANCEL,
            lambda: _command(
                CancelCase, closure_code=closure_code, actor=actor or caller.label, reason=reason
            ),
        ),
    )


async def engine_command(
    *,
    session: AsyncSession,
    temporal: Client,
    ref: str,
    caller: Caller,
    name: str,
    model: type[BaseModel],
    **fields: Any,
) -> CommandResult:
    """A command only the case engine has (skip, tick, reopen, proposal, message, feedback):
    409 for a case of the frozen workflow. ``reopen`` is allowed on a resolved case."""
    row = await eng.load_case(session=session, ref=ref, caller=caller)
    eng.require_commandable(row)
    if not row.is_engine:
        raise eng.not_for_frozen(row, f"'{name}' command")
    cmd = _command(model, **fields, **_identity(caller))
    return await eng.engine_update(temporal=temporal, row=row, name=name, arg=cmd, caller=caller)


# ---------------------------------------------------------------- sorted queue (console)
CASE_SORTS = ("created", "updated", "priority", "stage")
_PRIORITY_RANK = {"normal": 0, "high": 1, "urgent": 2, "critical": 3}
_STAGE_RANK = {stage.value: i for i, stage in enumerate(Stage)}


async def query_cases(
    *,
    session: AsyncSession,
    status_filter: Sequence[str] | None = None,
    stage: Sequence[str] | None = None,
    client_type: ClientType | None = None,
    tier: ClientTier | None = None,
    sla_state: Sequence[str] | None = None,
    case_type: Sequence[str] | None = None,
    sort: str = "created",
    descending: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Case], int]:
    """Read-model rows for people's queues: like ``list_cases`` but sortable, and the rows
    themselves (priority included). Ties break on the reference so pages never overlap."""
    if sort not in CASE_SORTS:
        raise ValueError(f"unknown sort {sort!r}")
    conditions = _filters(
        status_filter=status_filter,
        stage=stage,
        client_type=client_type,
        tier=tier,
        sla_state=sla_state,
        case_type=case_type,
    )
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
