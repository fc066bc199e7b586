"""/cases: start, read and list cases, and the human steps of the process."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Response, status

from api.deps import (
    AnyRole,
    CaseCreator,
    CaseWorker,
    DocumentSubmitter,
    Reviewer,
    SessionDep,
    SettingsDep,
    TaskDoer,
    TemporalDep,
)
from api.services import cases as svc
from core.settings import Role
from schemas.case import CASE_REF_PATTERN, CasePage, CaseState, CaseView, StartCaseRequest
from schemas.commands import (
    CancelCase,
    CommandAccepted,
    CompleteTask,
    ComplianceDecision,
    DocumentsReceived,
    FinalSignOff,
    PauseRequest,
    ResumeRequest,
    SendBack,
    TaskCompletion,
)
from schemas.enums import CaseStatus, ClientTier, ClientType, SlaState, Stage
from workflows.onboarding import OnboardingCaseWorkflow

router = APIRouter(prefix="/cases", tags=["cases"])

Ref = Annotated[str, Path(pattern=CASE_REF_PATTERN, description="Case reference")]


@router.post(
    "",
    response_model=CaseView,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "Same request seen before: the existing case"},
        409: {"description": "Reference or key already used for a different request"},
    },
)
async def create_case(
    body: StartCaseRequest,
    response: Response,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    caller: CaseCreator,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=8, max_length=200)
    ] = None,
) -> CaseView:
    """Start an onboarding case. Idempotent on `reference` and on the `Idempotency-Key` header."""
    result = await svc.start_case(
        session=session,
        temporal=temporal,
        settings=settings,
        body=body,
        idempotency_key=idempotency_key,
        requested_by=caller.label,
    )
    if not result.created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/cases/{result.view.reference}"
    return result.view


@router.get("", response_model=CasePage)
async def list_cases(
    session: SessionDep,
    _: AnyRole,
    status_: Annotated[list[CaseStatus] | None, Query(alias="status")] = None,
    stage: Annotated[list[Stage] | None, Query()] = None,
    client_type: ClientType | None = None,
    tier: ClientTier | None = None,
    sla_state: Annotated[list[SlaState] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CasePage:
    """Cases, newest first. Repeat `status`/`stage`/`sla_state` to match any of several."""
    return await svc.list_cases(
        session=session,
        status_filter=status_,
        stage=stage,
        client_type=client_type,
        tier=tier,
        sla_state=sla_state,
        limit=limit,
        offset=offset,
    )


@router.get("/{ref}", response_model=CaseView)
async def get_case(ref: Ref, session: SessionDep, settings: SettingsDep, _: AnyRole) -> CaseView:
    """Stage, status, timestamps and the stage history, from the read model."""
    return await svc.get_case(session=session, settings=settings, ref=ref)


@router.get("/{ref}/state", response_model=CaseState)
async def get_live_state(
    ref: Ref, session: SessionDep, temporal: TemporalDep, _: AnyRole
) -> CaseState:
    """The workflow's own view (running or closed): tasks, what it waits for, the plan."""
    handle = await svc.running_case(session=session, temporal=temporal, ref=ref, closed_ok=True)
    return await svc.live_state(handle)


@router.post(
    "/{ref}/documents-received",
    response_model=CommandAccepted,
    status_code=status.HTTP_202_ACCEPTED,
)
async def documents_received(
    ref: Ref,
    body: DocumentsReceived,
    session: SessionDep,
    temporal: TemporalDep,
    caller: DocumentSubmitter,
) -> CommandAccepted:
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
    return await svc.documents_received(session=session, temporal=temporal, ref=ref, body=body)


@router.post("/{ref}/compliance-decision", response_model=CommandAccepted)
async def compliance_decision(
    ref: Ref,
    body: ComplianceDecision,
    session: SessionDep,
    temporal: TemporalDep,
    _: Reviewer,
) -> CommandAccepted:
    """Approve or reject the compliance review (409 unless the case is in compliance review)."""
    return await svc.update_case(
        session=session,
        temporal=temporal,
        ref=ref,
        update=OnboardingCaseWorkflow.decide_compliance,
        arg=body,
    )


@router.post("/{ref}/final-review", response_model=CommandAccepted)
async def final_review(
    ref: Ref, body: FinalSignOff, session: SessionDep, temporal: TemporalDep, _: CaseWorker
) -> CommandAccepted:
    """Sign the case off in final review (409 unless it is in final review)."""
    return await svc.update_case(
        session=session,
        temporal=temporal,
        ref=ref,
        update=OnboardingCaseWorkflow.sign_off,
        arg=body,
    )


@router.post("/{ref}/pause", response_model=CommandAccepted, status_code=status.HTTP_202_ACCEPTED)
async def pause_case(
    ref: Ref, body: PauseRequest, session: SessionDep, temporal: TemporalDep, _: CaseWorker
) -> CommandAccepted:
    """Halt automation and stop the SLA clock (409 if already paused)."""
    return await svc.pause(session=session, temporal=temporal, ref=ref, body=body)


@router.post("/{ref}/resume", response_model=CommandAccepted, status_code=status.HTTP_202_ACCEPTED)
async def resume_case(
    ref: Ref, body: ResumeRequest, session: SessionDep, temporal: TemporalDep, _: CaseWorker
) -> CommandAccepted:
    """Resume automation; the stage's remaining SLA budget continues (409 unless paused)."""
    return await svc.resume(session=session, temporal=temporal, ref=ref, body=body)


@router.post("/{ref}/tasks/{task_key}/complete", response_model=CommandAccepted)
async def complete_task(
    ref: Ref,
    task_key: Annotated[str, Path(pattern=r"^[a-z0-9_]+$")],
    body: TaskCompletion,
    session: SessionDep,
    temporal: TemporalDep,
    _: TaskDoer,
) -> CommandAccepted:
    """Mark a manual task of the current stage done (409 if it is not open now)."""
    command = CompleteTask(task_key=task_key, actor=body.actor, note=body.note)
    return await svc.update_case(
        session=session,
        temporal=temporal,
        ref=ref,
        update=OnboardingCaseWorkflow.complete_task,
        arg=command,
    )


@router.post("/{ref}/send-back", response_model=CommandAccepted)
async def send_back(
    ref: Ref, body: SendBack, session: SessionDep, temporal: TemporalDep, _: CaseWorker
) -> CommandAccepted:
    """Return the case to an earlier stage, whose SLA starts afresh."""
    return await svc.update_case(
        session=session,
        temporal=temporal,
        ref=ref,
        update=OnboardingCaseWorkflow.send_back,
        arg=body,
    )


@router.post("/{ref}/cancel", response_model=CommandAccepted)
async def cancel_case(
    ref: Ref, body: CancelCase, session: SessionDep, temporal: TemporalDep, _: CaseWorker
) -> CommandAccepted:
    """Cancel at any stage with a closure code; a provisioned account is closed again."""
    return await svc.update_case(
        session=session,
        temporal=temporal,
        ref=ref,
        update=OnboardingCaseWorkflow.cancel,
        arg=body,
    )
