"""/cases: start, read and list cases, and the human steps of the process.

Every command loads the case row first (404), checks the stage's access roles (403) and that
the case takes commands (409), then goes to the case's workflow by name: the case engine's
updates for engine cases, the frozen onboarding workflow's signals and updates for cases it
still runs (``api.services.cases`` / ``api.services.engine``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Response, status

from api.deps import (
    AnyRole,
    CaseCreator,
    CaseTypesDep,
    CaseWorker,
    ClientApp,
    ClientOrManager,
    DocumentSubmitter,
    Reviewer,
    SessionDep,
    SettingsDep,
    TaskDoer,
    TemporalDep,
)
from api.observability import count_case_created
from api.responses import errors
from api.routes.documents import DocId
from api.services import cases as svc
from api.services import engine as eng
from api.services import sla, work
from core.logging import bind_case_ref
from core.settings import Role
from schemas.case import (
    CASE_REF_PATTERN,
    KEY_PATTERN,
    AcknowledgeBody,
    AssignmentBody,
    CancelBody,
    CasePage,
    CaseView,
    ComplianceDecisionBody,
    DecisionBody,
    DocumentsReceivedBody,
    FeedbackBody,
    FinalReviewBody,
    MessageBody,
    PauseBody,
    ProposalBody,
    ReopenBody,
    ResumeBody,
    ReviewBody,
    SendBackBody,
    SkipBody,
    StartCaseRequest,
    TaskCompletionBody,
    WaiveBody,
)
from schemas.commands import DocumentsReceived, PauseRequest, ResumeRequest
from schemas.engine_commands import (
    AcknowledgeEscalation,
    ClientMessage,
    CommandResult,
    Feedback,
    ProposalResponse,
    ReopenCase,
    SkipElement,
    TickItem,
)
from schemas.enums import ClientTier, ClientType
from schemas.sla_explain import SlaExplanation
from schemas.snapshot import CaseSnapshot

router = APIRouter(prefix="/cases", tags=["cases"])

Ref = Annotated[str, Path(pattern=CASE_REF_PATTERN, description="Case reference")]
KeyPath = Annotated[str, Path(pattern=KEY_PATTERN)]
KeyList = Annotated[list[Annotated[str, Query(pattern=KEY_PATTERN)]] | None, Query()]
ACCEPTED = status.HTTP_202_ACCEPTED
MAX_OFFSET = 100_000
"""Deeper pages are refused (422): a bigint offset would otherwise fail in Postgres."""

READ = errors(401, 403, 404, 422, 503)
"""Reading one case: 403 when its stage is restricted to roles the caller lacks."""
COMMAND = errors(400, 401, 403, 404, 409, 422, 503)
"""A command: 409 when the case does not take it now (wrong stage, paused, closed), 422 for a
value the case refuses, 503 when Temporal does not answer in time."""


@router.post(
    "",
    response_model=CaseView,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "Same request seen before: the existing case"},
        **errors(
            400,
            401,
            403,
            409,
            422,
            503,
            described={
                409: "Reference or key already used for a different request",
                422: "Invalid body, unknown case type, or data the type refuses",
            },
        ),
    },
)
async def create_case(
    body: StartCaseRequest,
    response: Response,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    registry: CaseTypesDep,
    caller: CaseCreator,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=8, max_length=200)
    ] = None,
) -> CaseView:
    """Open a case of `case_type` (default `client_onboarding`) with its `data`. Idempotent on
    `reference` and on the `Idempotency-Key` header."""
    if body.reference:
        bind_case_ref(body.reference)  # this request's log lines are about that case
    result = await svc.start_case(
        session=session,
        temporal=temporal,
        settings=settings,
        registry=registry,
        body=body,
        idempotency_key=idempotency_key,
        requested_by=caller.label,
    )
    bind_case_ref(result.view.reference)
    if result.created:
        count_case_created(result.view.case_type)
    else:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/cases/{result.view.reference}"
    return result.view


@router.get("", response_model=CasePage, responses=errors(401, 422, 503))
async def list_cases(
    session: SessionDep,
    _: AnyRole,
    status_: Annotated[
        list[Annotated[str, Query(pattern=KEY_PATTERN)]] | None, Query(alias="status")
    ] = None,
    stage: KeyList = None,
    case_type: KeyList = None,
    client_type: ClientType | None = None,
    tier: ClientTier | None = None,
    sla_state: KeyList = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> CasePage:
    """Cases, newest first. Repeat `status`/`stage`/`case_type`/`sla_state` to match any of
    several."""
    return await svc.list_cases(
        session=session,
        status_filter=status_,
        stage=stage,
        client_type=client_type,
        tier=tier,
        sla_state=sla_state,
        case_type=case_type,
        limit=limit,
        offset=offset,
    )


@router.get("/{ref}", response_model=CaseView, responses=READ)
async def get_case(
    ref: Ref, session: SessionDep, settings: SettingsDep, caller: AnyRole
) -> CaseView:
    """Stage, status, timestamps and the stage history, from the read model."""
    return await svc.get_case(session=session, settings=settings, ref=ref, caller=caller)


@router.get("/{ref}/state", response_model=CaseSnapshot, responses=READ)
async def get_live_state(
    ref: Ref, session: SessionDep, temporal: TemporalDep, caller: AnyRole
) -> CaseSnapshot:
    """The workflow's own view (running or closed) as a `CaseSnapshot`, for every case type:
    elements, approvals, pauses, SLA now, and which commands it takes now."""
    return await eng.case_snapshot(session=session, temporal=temporal, ref=ref, caller=caller)


@router.get(
    "/{ref}/sla", response_model=SlaExplanation, responses=errors(401, 403, 404, 409, 422, 503)
)
async def explain_sla(
    ref: Ref, session: SessionDep, temporal: TemporalDep, caller: AnyRole
) -> SlaExplanation:
    """The current stage's SLA explained now: due at, working minutes used and left (they add
    up to the budget), when the clock stopped, the weekends and holidays it skips, and every
    deadline (warnings, breach, escalation levels) with when it falls due. 409 for a case
    without an SLA clock now (or on the frozen workflow)."""
    return await sla.explain(session=session, temporal=temporal, ref=ref, caller=caller)


# ------------------------------------------------------------------ commands (both engines)
@router.post(
    "/{ref}/documents-received",
    response_model=CommandResult,
    status_code=ACCEPTED,
    responses=COMMAND,
)
async def documents_received(
    ref: Ref,
    body: DocumentsReceivedBody,
    session: SessionDep,
    temporal: TemporalDep,
    caller: DocumentSubmitter,
) -> CommandResult:
    """Ask the case to check its documents again, or (case managers) waive verification.

    Uploads through ``POST /cases/{ref}/documents`` notify the case by themselves; this is for
    a case manager who saw the originals (``waive_verification`` with a ``note``), or to nudge
    a re-check. 409 unless the case is collecting documents.
    """
    if body.waive_verification and caller.role != Role.CASE_MANAGER:
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail="only a case manager may waive document verification",
        )
    return await svc.documents_received(
        session=session,
        temporal=temporal,
        ref=ref,
        body=DocumentsReceived(
            actor=body.actor or caller.label,
            document_ids=body.document_ids,
            note=body.note,
            waive_verification=body.waive_verification,
        ),
        caller=caller,
    )


@router.post("/{ref}/compliance-decision", response_model=CommandResult, responses=COMMAND)
async def compliance_decision(
    ref: Ref,
    body: ComplianceDecisionBody,
    session: SessionDep,
    temporal: TemporalDep,
    caller: Reviewer,
) -> CommandResult:
    """Approve or reject the compliance review (409 unless the case is in compliance review).
    Engine cases: the approval of the current stage (`decide`)."""
    return await svc.compliance_decision(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        decision=body.decision,
        reason=body.reason,
        reviewer=body.reviewer,
    )


@router.post("/{ref}/final-review", response_model=CommandResult, responses=COMMAND)
async def final_review(
    ref: Ref, body: FinalReviewBody, session: SessionDep, temporal: TemporalDep, caller: CaseWorker
) -> CommandResult:
    """Sign the case off in final review (409 unless it is in final review)."""
    return await svc.final_review(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        note=body.note,
        reviewer=body.reviewer,
    )


@router.post("/{ref}/decision", response_model=CommandResult, responses=COMMAND)
async def decision(
    ref: Ref, body: DecisionBody, session: SessionDep, temporal: TemporalDep, caller: Reviewer
) -> CommandResult:
    """Approve or reject the current approval as the signed-in identity (each approval of an
    n-of-m approval must come from a different identity: a repeat is 409)."""
    return await svc.decide(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        decision=body.decision,
        element=body.element,
        reason_code=body.reason_code,
        note=body.note,
    )


@router.post("/{ref}/pause", response_model=CommandResult, status_code=ACCEPTED, responses=COMMAND)
async def pause_case(
    ref: Ref, body: PauseBody, session: SessionDep, temporal: TemporalDep, caller: CaseWorker
) -> CommandResult:
    """Halt automation and stop the SLA clock (409 if already paused)."""
    return await svc.pause(
        session=session,
        temporal=temporal,
        ref=ref,
        body=PauseRequest(actor=body.actor or caller.label, reason=body.reason),
        caller=caller,
    )


@router.post("/{ref}/resume", response_model=CommandResult, status_code=ACCEPTED, responses=COMMAND)
async def resume_case(
    ref: Ref, body: ResumeBody, session: SessionDep, temporal: TemporalDep, caller: CaseWorker
) -> CommandResult:
    """Resume automation; the stage's remaining SLA budget continues (409 unless paused)."""
    return await svc.resume(
        session=session,
        temporal=temporal,
        ref=ref,
        body=ResumeRequest(actor=body.actor or caller.label, reason=body.reason),
        caller=caller,
    )


@router.post("/{ref}/tasks/{task_key}/complete", response_model=CommandResult, responses=COMMAND)
async def complete_task(
    ref: Ref,
    task_key: Annotated[str, Path(pattern=r"^[a-z0-9_]{1,60}$")],
    body: TaskCompletionBody,
    session: SessionDep,
    temporal: TemporalDep,
    caller: TaskDoer,
) -> CommandResult:
    """Mark a task of the current stage done (409 if it is not open now). Callback tasks of
    engine cases take an `outcome`."""
    return await svc.complete_task(
        session=session,
        temporal=temporal,
        ref=ref,
        task_key=task_key,
        caller=caller,
        note=body.note,
        outcome=body.outcome,
        actor=body.actor,
    )


@router.post("/{ref}/send-back", response_model=CommandResult, responses=COMMAND)
async def send_back(
    ref: Ref, body: SendBackBody, session: SessionDep, temporal: TemporalDep, caller: CaseWorker
) -> CommandResult:
    """Return the case to an earlier stage, whose SLA starts afresh."""
    return await svc.send_back(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        to_stage=body.to_stage,
        reason=body.reason,
        actor=body.actor,
    )


@router.post("/{ref}/cancel", response_model=CommandResult, responses=COMMAND)
async def cancel_case(
    ref: Ref, body: CancelBody, session: SessionDep, temporal: TemporalDep, caller: CaseWorker
) -> CommandResult:
    """Cancel at any stage with a closure code; what automation did is compensated."""
    return await svc.cancel(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        closure_code=body.closure_code,
        reason=body.reason,
        actor=body.actor,
    )


@router.post("/{ref}/documents/{doc_id}/review", response_model=CommandResult, responses=COMMAND)
async def review_document(
    ref: Ref,
    doc_id: DocId,
    body: ReviewBody,
    session: SessionDep,
    temporal: TemporalDep,
    caller: CaseWorker,
) -> CommandResult:
    """Accept or reject a document the machine sent to a person (its verdict is
    ``needs_review``); 409 for any other document. The documents are then checked again: an
    accepted one counts as received, a rejected one asks the client for a new one with the
    note as the reason."""
    return await svc.review_document(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        document_id=doc_id,
        decision=body.decision,
        note=body.note,
        element=body.element,
    )


@router.post("/{ref}/documents/waive", response_model=CommandResult, responses=COMMAND)
async def waive_documents(
    ref: Ref, body: WaiveBody, session: SessionDep, temporal: TemporalDep, caller: CaseWorker
) -> CommandResult:
    """Accept the documents as seen (audited; a note is required)."""
    return await svc.waive_documents(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        note=body.note,
        element=body.element,
    )


# ------------------------------------------------------------------ commands (engine cases)
@router.post("/{ref}/elements/{key}/skip", response_model=CommandResult, responses=COMMAND)
async def skip_element(
    ref: Ref,
    key: KeyPath,
    body: SkipBody,
    session: SessionDep,
    temporal: TemporalDep,
    caller: CaseWorker,
) -> CommandResult:
    """Skip an optional element of the current stage, with a reason (audited)."""
    return await svc.engine_command(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        name=eng.SKIP,
        model=SkipElement,
        element=key,
        reason=body.reason,
    )


@router.post("/{ref}/assignment", response_model=CommandResult, responses=COMMAND)
async def assign(
    ref: Ref,
    body: AssignmentBody,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    caller: TaskDoer,
) -> CommandResult:
    """Take (``take: true``), assign (``assignee``), reassign (with a ``reason``) or release
    (no assignee) the case or one step of its current stage (``element``). 403 when the
    assignee may not act in the stage or on the step; 409 when it is already theirs or the
    step is finished; 422 for an unknown person or a reassignment without a reason."""
    return await work.assign(
        session=session, temporal=temporal, settings=settings, ref=ref, caller=caller, body=body
    )


@router.post("/{ref}/escalation/acknowledge", response_model=CommandResult, responses=COMMAND)
async def acknowledge_escalation(
    ref: Ref,
    body: AcknowledgeBody,
    session: SessionDep,
    temporal: TemporalDep,
    caller: TaskDoer,
) -> CommandResult:
    """Take ownership of the current escalation level. Where the stage says
    ``escalations_stop_when_acknowledged``, later levels of this breach are held back.
    409 when nothing is escalated or this level is already acknowledged."""
    return await svc.engine_command(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        name=eng.ACKNOWLEDGE_ESCALATION,
        model=AcknowledgeEscalation,
        note=body.note,
    )


@router.post(
    "/{ref}/checklists/{element}/items/{item}/tick",
    response_model=CommandResult,
    responses=errors(401, 403, 404, 409, 422, 503),  # no body, so no 400
)
async def tick_item(
    ref: Ref,
    element: KeyPath,
    item: KeyPath,
    session: SessionDep,
    temporal: TemporalDep,
    caller: TaskDoer,
) -> CommandResult:
    """Tick one item of a checklist of the current stage."""
    return await svc.engine_command(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        name=eng.TICK,
        model=TickItem,
        element=element,
        item=item,
    )


@router.post("/{ref}/reopen", response_model=CommandResult, responses=COMMAND)
async def reopen_case(
    ref: Ref, body: ReopenBody, session: SessionDep, temporal: TemporalDep, caller: CaseWorker
) -> CommandResult:
    """Reopen a resolved case at `to_stage` (default: its last stage)."""
    return await svc.engine_command(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        name=eng.REOPEN,
        model=ReopenCase,
        to_stage=body.to_stage,
        reason=body.reason,
    )


@router.post("/{ref}/proposal", response_model=CommandResult, responses=COMMAND)
async def respond_to_proposal(
    ref: Ref,
    body: ProposalBody,
    session: SessionDep,
    temporal: TemporalDep,
    caller: ClientOrManager,
) -> CommandResult:
    """The client accepts or rejects (with a reason) the outcome proposed to them."""
    return await svc.engine_command(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        name=eng.RESPOND_TO_PROPOSAL,
        model=ProposalResponse,
        accept=body.accept,
        reason=body.reason,
    )


@router.post("/{ref}/messages", response_model=CommandResult, responses=COMMAND)
async def client_message(
    ref: Ref, body: MessageBody, session: SessionDep, temporal: TemporalDep, caller: ClientApp
) -> CommandResult:
    """A message from the client (may reopen a resolved case, per its case type)."""
    return await svc.engine_command(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        name=eng.CLIENT_MESSAGE,
        model=ClientMessage,
        text=body.text,
    )


@router.post("/{ref}/feedback", response_model=CommandResult, responses=COMMAND)
async def feedback(
    ref: Ref, body: FeedbackBody, session: SessionDep, temporal: TemporalDep, caller: ClientApp
) -> CommandResult:
    """CSAT (1-5) and/or NPS (0-10) from the client; a low score may reopen the case."""
    return await svc.engine_command(
        session=session,
        temporal=temporal,
        ref=ref,
        caller=caller,
        name=eng.FEEDBACK,
        model=Feedback,
        csat=body.csat,
        nps=body.nps,
        comment=body.comment,
    )
