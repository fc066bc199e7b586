"""The ``state`` query's answer: the case's state plus what is computed live (SLA left now,
what the case waits for, which commands it takes now)."""

from __future__ import annotations

from datetime import datetime

from schemas.case_state import ElementStatus, EngineStatus
from schemas.sla_explain import ClockMilestone, ClockPause, SlaClockView
from schemas.snapshot import CaseSnapshot, CaseSummary, SlaNow, StagePlan
from workflows.engine import clock
from workflows.engine.runtime import CaseRuntime
from workflows.sla import milestones_for


def build(case: CaseRuntime, now: datetime) -> CaseSnapshot:
    state, case_type = case.state, case.case_type
    stage = case.stage_def
    sla = None
    if state.sla is not None:
        left = clock.remaining(state.sla, now, case.calendar)
        running = state.sla.running_since is not None
        sla = SlaNow(
            state=case.sla_state(),
            budget_seconds=state.sla.budget_seconds,
            active_seconds=clock.active(state.sla, now, case.calendar).total_seconds(),
            remaining_seconds=left.total_seconds() if left is not None else None,
            due_at=clock.due_at(state.sla, now, case.calendar),
            running=running,
            escalation_level=state.sla.escalation_level,
            acknowledged_level=state.sla.acknowledged_level,
            acknowledged_by=state.sla.acknowledged_by,
        )
    approval = next((e for e in state.elements if e.kind == "approval" and e.votes), None)
    approval = approval or next(
        (e for e in state.elements if e.kind == "approval" and e.status == ElementStatus.ACTIVE),
        None,
    )
    proposal = next(
        (
            case.element_def(e.key).proposal
            for e in case.active_elements()
            if e.kind == "client_acceptance"
        ),
        None,
    )
    return CaseSnapshot(
        case_ref=state.case_ref,
        case_type=state.case_type,
        case_type_version=state.case_type_version,
        status=state.status.value,
        stage=state.stage,
        stage_title=stage.title,
        resolution=state.resolution,
        priority=state.priority,
        assignee=state.assignee,
        assignee_team=state.assignee_team,
        assigned_at=state.assigned_at,
        eta=state.eta,
        awaiting=case.awaiting(),
        flags=list(state.flags),
        fields={k: v for k, v in state.fields.items() if not k.startswith("_")},
        stages=[
            StagePlan(
                key=s.key,
                title=s.title,
                client_status=s.client_status,
                owner_role=s.owner_role,
                sla_seconds=s.sla.total_seconds() if s.sla else None,
                access=list(s.access),
            )
            for s in case_type.stages
        ],
        elements=list(state.elements),
        history=list(state.history),
        pauses=list(state.pauses),
        approvals=list(approval.votes) if approval else [],
        approvals_required=approval.required if approval else 0,
        sla=sla,
        paused_by=state.paused_by,
        access=list(stage.access),
        allowed_actions=allowed_actions(case),
        reject_reasons=list(case_type.reject_reasons),
        closure_code=state.closure_code,
        closure_reason=state.closure_reason,
        account_number=(state.fields.get("account") or {}).get("account_number"),
        proposal=proposal,
        projection_version=state.counters.get("projection", 0),
        requested_by=case.input.requested_by,
    )


def summary(case: CaseRuntime) -> CaseSummary:
    state = case.state
    return CaseSummary(
        case_ref=state.case_ref,
        status=state.status.value,
        stage=state.stage,
        awaiting=case.awaiting(),
        sla_state=case.sla_state(),
        allowed_actions=allowed_actions(case),
    )


def allowed_actions(case: CaseRuntime) -> list[str]:
    """Which updates fit now (the validators still decide; this drives buttons)."""
    status = case.state.status
    if status.is_final:
        return []
    if status == EngineStatus.RESOLVED:
        return ["reopen", "client_message", "feedback"]
    if status == EngineStatus.PAUSED:
        return ["resume", "cancel", "client_message", "feedback", "assign"]
    actions = ["pause", "cancel", "client_message", "feedback", "assign"]
    sla = case.state.sla
    if sla is not None and sla.escalation_level > sla.acknowledged_level:
        actions.append("acknowledge_escalation")
    if case.case_type.stage_index(case.state.stage) > 0:
        actions.append("send_back")
    kinds = {e.kind for e in case.active_elements()}
    for kind, action in (
        ("approval", "decide"),
        ("task", "complete_task"),
        ("checklist", "tick"),
        ("documents", "waive_documents"),
        ("client_acceptance", "respond_to_proposal"),
    ):
        if kind in kinds:
            actions.append(action)
    if any(e.kind == "documents" and e.in_review for e in case.active_elements()):
        actions.append("review_document")
    optional = {e.key for e in case.stage_def.elements if e.optional}
    failed = [e for e in case.active_elements() if (e.outcome or "").startswith("failed")]
    if failed or any(e.key in optional and not e.finished for e in case.state.elements):
        actions.append("skip")
    return actions


def sla_clock(case: CaseRuntime) -> SlaClockView | None:
    """The current stage's clock as data (``sla_clock`` query); the API does the arithmetic
    at request time (``api.services.sla``)."""
    state, sla = case.state, case.state.sla
    if sla is None:
        return None
    stage = case.stage_def
    entered = state.history[-1].entered_at if state.history else sla.started_at
    return SlaClockView(
        stage=stage.key,
        stage_title=stage.title,
        entered_at=entered,
        budget_seconds=sla.budget_seconds,
        active_before_seconds=sla.active_before_seconds,
        running_since=sla.running_since,
        paused_seconds=sla.paused_seconds,
        stopped_since=sla.stopped_since,
        calendar=case.calendar,
        milestones=[
            ClockMilestone(
                key=m.key,
                kind=m.kind.value,
                at_working_seconds=m.at_active.total_seconds(),
                level=m.level,
                target=m.target,
                fired=m.key in sla.fired,
            )
            for m in milestones_for(stage)
        ],
        pauses=[
            ClockPause(paused_at=p.paused_at, resumed_at=p.resumed_at, reason=p.reason)
            for p in state.pauses
            if p.stage == stage.key and p.paused_at >= entered
        ],
    )
