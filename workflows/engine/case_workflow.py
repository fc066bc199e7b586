"""CaseWorkflow: one engine for every case type.

Read ``run`` top to bottom: open the case, run each stage of the pinned case type (each stage
runs its elements in order), resolve, wait for a reopen or the closing timer, close. Human steps
are updates with validators: a command that does not fit is refused before it reaches history.
Handlers only change state and record what to project; the waiting loop writes it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case_state import (
        ElementState,
        ElementStatus,
        EngineStatus,
        PauseRecord,
        StageVisit,
    )
    from schemas.casetype import StageDef
    from schemas.client import ContactPreferences
    from schemas.conditions import holds
    from schemas.contracts import CASE_WORKFLOW, EngineCaseInput, EngineCaseOutcome
    from schemas.engine_commands import (
        AcknowledgeEscalation,
        AssignWork,
        CancelCaseCmd,
        ClientMessage,
        CommandResult,
        CompleteTaskCmd,
        Decide,
        DocumentsUploaded,
        Feedback,
        PauseCase,
        ProposalResponse,
        ReopenCase,
        ResumeCase,
        ReviewDocument,
        SendBackCmd,
        SkipElement,
        TickItem,
        WaiveDocuments,
    )
    from schemas.sla_explain import SlaClockView
    from schemas.snapshot import CaseSnapshot, CaseSummary
    from workflows.engine import assignment, auto_complete, clock, snapshot
    from workflows.engine.elements import (
        approval,
        automation,
        checklist,
        client_acceptance,
        documents,
        notification,
        subprocess,
        task,
    )
    from workflows.engine.elements.base import Forbidden, Invalid, WrongState, finish
    from workflows.engine.runtime import CaseRuntime

CLIENT_ROLES = ("client", "client_app")  # the client's own commands pass stage access
CLIENT_REPLY_NOTICE = "client-reply-notice"
"""Patch: a client message tells the case's owner (a staff notice)."""

RUNNERS = {
    "task": task.run,
    "approval": approval.run,
    "documents": documents.run,
    "automation": automation.run,
    "client_acceptance": client_acceptance.run,
    "notification": notification.run,
    "subprocess": subprocess.run,
    "checklist": checklist.run,
}


@dataclass(frozen=True)
class StageEnd:
    """How a stage visit ended: next stage, jump to another, resolve, or cancel."""

    kind: str  # next | jump | resolve | cancel
    index: int = 0
    resolution: str = ""


@workflow.defn(name=CASE_WORKFLOW)
class CaseWorkflow:
    @workflow.init
    def __init__(self, inp: EngineCaseInput) -> None:
        self.case = CaseRuntime(inp)
        if inp.carried is None:
            self.case.state.status = EngineStatus.OPEN

    @workflow.run
    async def run(self, inp: EngineCaseInput) -> EngineCaseOutcome:
        case = self.case
        try:
            await self._lifecycle()
        except asyncio.CancelledError:  # the parent case (or an operator) cancelled the run
            if not case.state.status.is_final:
                case.cancel_requested = ("system", "cancelled_by_parent", "parent case ended")
                await self._cancel()
        await case.flush()
        await case.outbox.drain()
        await workflow.wait_condition(workflow.all_handlers_finished)
        state = case.state
        return EngineCaseOutcome(
            case_ref=state.case_ref,
            status=state.status.value,
            resolution=state.resolution,
            closure_code=state.closure_code,
            fields={  # what a child found out, for its parent; the profile stays out
                k: v
                for k, v in state.fields.items()
                if not k.startswith("_") and k not in ("client", "international")
            }
            if state.parent_workflow_id is not None
            else {},
        )

    async def _lifecycle(self) -> None:
        case = self.case
        stages = case.case_type.stages
        index, resuming = 0, case.input.carried is not None
        if not resuming:
            case.event(
                "case_opened",
                case.input.requested_by,
                {"case_type": case.case_type.name, "version": case.case_type.version},
            )
        elif case.state.status == EngineStatus.RESOLVED:  # continued while awaiting closure
            reopened_at = await self._await_closure()
            if reopened_at is None:
                return
            index, resuming = reopened_at, False
        else:  # continued mid-stage: pick the stage up where the last run left it
            index = case.case_type.stage_index(case.state.stage)
        while True:
            if resuming:
                end = await self._run_stage(stages[index], resumed=True)
                resuming = False
            elif index < len(stages) and not holds(stages[index].when, case.state.fields):
                index += 1  # routing: this case does not go through that stage
                continue
            elif index < len(stages):
                end = await self._run_stage(stages[index])
            else:
                end = StageEnd("resolve", resolution="completed")
            if end.kind == "next":
                index += 1
            elif end.kind == "jump":
                index = end.index
            elif end.kind == "cancel":
                await self._cancel()
                return
            else:
                reopened_at = await self._resolve_and_wait(end.resolution)
                if reopened_at is None:
                    return
                index = reopened_at

    # ---------------------------------------------------------------- stages
    async def _run_stage(self, stage: StageDef, *, resumed: bool = False) -> StageEnd:
        """Run a visit of ``stage``. ``resumed``: the visit is already open (a continued run);
        finished elements are passed over and the open one waits on as before."""
        case = self.case
        if not resumed:
            self._enter(stage)
            await case.estimate_at_entry()  # the ETA, before this stage tells the client
        for spec in stage.elements:
            element = case.state.element(spec.key)
            assert element is not None
            await case.wait_until(lambda: True)  # a pause holds the case before each step
            if case.interrupted():
                break
            if element.finished:  # skipped before it was reached
                continue
            if not holds(spec.when, case.state.fields):
                element.status = ElementStatus.NOT_APPLICABLE
                case.projector.element(element)
                continue
            if auto_complete.sign_off(case, stage, spec, element):
                continue  # straight-through: the system signed it off under a rule
            await RUNNERS[spec.kind](case, spec, element)  # type: ignore[operator]
            if case.interrupted():
                break
            if approval.rejected(element) and getattr(spec, "on_reject", "") != "continue":
                assert isinstance(spec, approval.ApprovalElement)
                vote = element.votes[-1]
                if spec.on_reject == "send_back" and spec.send_back_to:
                    reason = f"{vote.reason_code}: {vote.note}"
                    case.jump = (spec.send_back_to, "sent_back", vote.actor, reason)
                    break
                self._close_visit(spec.rejected_resolution)
                case.state.closure_reason = f"{vote.reason_code}: {vote.note}"
                case.projector.case(closure_reason=case.state.closure_reason)
                return StageEnd("resolve", resolution=spec.rejected_resolution)
        if case.cancel_requested is not None:
            return StageEnd("cancel")
        if case.jump is not None:
            return self._take_jump()
        self._close_visit("completed")
        return StageEnd("next")

    def _enter(self, stage: StageDef) -> None:
        """Open a visit of ``stage``: fresh SLA clock and elements, priority back to normal."""
        case, state = self.case, self.case.state
        now = case.now()
        if state.history and state.history[-1].exited_at is None:
            self._close_visit("completed")
        state.fields["_previous_stage_done"] = [
            e.title
            for e in state.elements
            if e.status == ElementStatus.DONE and e.kind in ("task", "automation", "checklist")
        ]
        state.stage = stage.key
        state.sla = clock.start(stage, now)
        state.priority = "normal"
        visit = StageVisit(
            seq=len(state.history) + 1,
            stage=stage.key,
            entered_at=now,
            sla_budget_seconds=stage.sla.total_seconds() if stage.sla else None,
        )
        state.history.append(visit)
        state.elements = [
            ElementState(key=e.key, kind=e.kind, stage=stage.key, title=e.title)
            for e in stage.elements
        ]
        case.derive_status()  # no element of the new visit waits on the client yet
        case.projector.case(stage=stage.key, access_roles=list(stage.access))
        assignment.on_stage_entered(case)
        case.projector.visit(visit)
        for element in state.elements:
            case.projector.element(element)
        case.event(
            "stage_entered",
            "system",
            {"stage": stage.key, "visit": visit.seq, "sla_seconds": visit.sla_budget_seconds},
        )

    def _close_visit(self, outcome: str) -> None:
        case, state = self.case, self.case.state
        if not state.history or state.history[-1].exited_at is not None:
            return
        now = case.now()
        visit = state.history[-1]
        visit.exited_at, visit.outcome = now, outcome
        if state.sla is not None:
            visit.active_seconds = clock.active(state.sla, now, case.calendar).total_seconds()
            visit.paused_seconds = clock.paused(state.sla, now).total_seconds()
            visit.sla_outcome = clock.outcome(state.sla)
            visit.escalations = state.sla.escalations
        case.projector.visit(visit)

    def _take_jump(self) -> StageEnd:
        case = self.case
        assert case.jump is not None
        target, outcome, actor, reason = case.jump
        case.jump = None
        self._close_visit(outcome)
        case.event(outcome, actor, {"from": case.state.stage, "to": target, "reason": reason})
        return StageEnd("jump", index=case.case_type.stage_index(target))

    # ---------------------------------------------------------------- lifecycle
    async def _resolve_and_wait(self, resolution: str) -> int | None:
        """Resolved: wait for the closing timer, or a reopen (returns the stage index)."""
        case, state = self.case, self.case.state
        now = case.now()
        state.status, state.resolution, state.resolved_at = EngineStatus.RESOLVED, resolution, now
        state.sla = None
        case.projector.case(status=state.status.value, resolution=resolution, resolved_at=now)
        case.event("case_resolved", "system", {"resolution": resolution})
        case.webhook("case.resolved", {"resolution": resolution})
        return await self._await_closure()

    async def _await_closure(self) -> int | None:
        """The closing timer runs from ``resolved_at`` (so a continued run keeps it); a reopen
        returns the stage index to go back to, closing returns None."""
        case, state = self.case, self.case.state
        resolution = state.resolution or "completed"
        assert state.resolved_at is not None
        if state.parent_workflow_id is None:  # a child case's lifecycle is its parent's
            closes_at = state.resolved_at + case.case_type.lifecycle.close_after
            await case.wait_until(lambda: workflow.now() >= closes_at, timers=lambda: [closes_at])
            if case.jump is not None:
                target, _, actor, reason = case.jump
                case.jump = None
                state.status, state.resolution, state.resolved_at = EngineStatus.OPEN, None, None
                state.closure_reason = None
                state.reopened += 1
                case.projector.case(
                    status=state.status.value,
                    resolution=None,
                    resolved_at=None,
                    closure_reason=None,
                )
                case.event("case_reopened", actor, {"to": target, "reason": reason})
                case.tell_staff(
                    "case_reopened",
                    [case.case_type.stage(target).owner_role],
                    {"stage": case.case_type.stage(target).title, "reason": reason, "by": actor},
                )
                return case.case_type.stage_index(target)
        state.status, state.closed_at = EngineStatus.CLOSED, case.now()
        case.projector.case(status=state.status.value, closed_at=state.closed_at)
        case.event("case_closed", "system", {"resolution": resolution})
        return None

    async def _cancel(self) -> None:
        case, state = self.case, self.case.state
        assert case.cancel_requested is not None
        actor, code, reason = case.cancel_requested
        self._close_visit("cancelled")
        for element in state.elements:
            if element.status == ElementStatus.ACTIVE:
                finish(case, element, by=actor, status=ElementStatus.SKIPPED, outcome="cancelled")
        if state.pauses and state.pauses[-1].resumed_at is None:
            self._end_pause(actor, f"case cancelled ({code})")
        await automation.compensate(case, f"case cancelled: {code}")
        state.status, state.closure_code, state.closure_reason = (
            EngineStatus.CANCELLED,
            code,
            reason,
        )
        state.closed_at = case.now()
        state.sla = None
        case.projector.case(
            status=state.status.value,
            closed_at=state.closed_at,
            closure_reason=f"{code}: {reason}" if reason else code,
        )
        case.event("case_cancelled", actor, {"closure_code": code, "reason": reason})
        case.webhook("case.cancelled", {"closure_code": code})

    def _end_pause(self, actor: str, reason: str) -> PauseRecord:
        state = self.case.state
        record = state.pauses[-1]
        record.resumed_at, record.resumed_by, record.resume_reason = self.case.now(), actor, reason
        state.paused_by = None
        self.case.projector.pause(record)
        return record

    # ---------------------------------------------------------------- command checks
    def _require(
        self,
        cmd: object,
        what: str,
        *,
        paused_ok: bool = False,
        resolved_ok: bool = False,
        resolved_only: bool = False,
        client_ok: bool = False,
    ) -> None:
        """The preconditions every human step shares; refusals never reach history."""
        case, state = self.case, self.case.state
        ref = state.case_ref
        if state.status.is_final:
            raise WrongState(f"case {ref} is {state.status.value}; it takes no {what}")
        if case.cancel_requested is not None:
            raise WrongState(f"case {ref} is being cancelled")
        if resolved_only and state.status != EngineStatus.RESOLVED:
            raise WrongState(f"case {ref} is {state.status.value}, not resolved; no {what}")
        if state.status == EngineStatus.RESOLVED and not (resolved_ok or resolved_only):
            raise WrongState(f"case {ref} is resolved; reopen it before {what}")
        if state.status == EngineStatus.PAUSED and not paused_ok:
            raise WrongState(f"case {ref} is paused by {state.paused_by}; resume it before {what}")
        if case.jump is not None and not resolved_only:
            raise WrongState(f"case {ref} is moving to {case.jump[0]}; try again in a moment")
        role = getattr(cmd, "role", "admin")
        if role in CLIENT_ROLES and not client_ok:
            raise Forbidden(f"{what} is for staff, not the client")
        access = case.stage_def.access
        if access and role not in access and role not in ("admin", *CLIENT_ROLES):
            raise Forbidden(f"stage {case.stage_def.key} is restricted to: {', '.join(access)}")

    def _result(self, message: str) -> CommandResult:
        state = self.case.state
        return CommandResult(
            case_ref=state.case_ref, stage=state.stage, status=state.status.value, message=message
        )

    # ---------------------------------------------------------------- pause / resume
    @workflow.update
    def pause(self, cmd: PauseCase) -> CommandResult:
        case, state = self.case, self.case.state
        now = case.now()
        record = PauseRecord(
            seq=len(state.pauses) + 1,
            stage=state.stage,
            paused_at=now,
            paused_by=cmd.actor,
            reason=cmd.reason,
        )
        state.pauses.append(record)
        state.status, state.paused_by = EngineStatus.PAUSED, cmd.actor
        if state.sla is not None:
            clock.stop(state.sla, now, case.calendar)
        case.projector.pause(record)
        case.projector.case(status=state.status.value, ever_paused=True)
        case.event("paused", cmd.actor, {"reason": cmd.reason, "stage": state.stage})
        case.touch()
        return self._result(f"paused by {cmd.actor}; the SLA clock is stopped")

    @pause.validator
    def _check_pause(self, cmd: PauseCase) -> None:
        self._require(cmd, "pause")

    @workflow.update
    def resume(self, cmd: ResumeCase) -> CommandResult:
        case, state = self.case, self.case.state
        self._end_pause(cmd.actor, cmd.reason)
        state.status = EngineStatus.OPEN
        if state.sla is not None:
            clock.resume(state.sla, case.now())
        case.derive_status()
        case.projector.case(status=state.status.value)
        case.event("resumed", cmd.actor, {"reason": cmd.reason, "stage": state.stage})
        case.touch()
        return self._result(f"resumed by {cmd.actor}")

    @resume.validator
    def _check_resume(self, cmd: ResumeCase) -> None:
        self._require(cmd, "resume", paused_ok=True)
        if self.case.state.status != EngineStatus.PAUSED:
            raise WrongState(f"case {self.case.state.case_ref} is not paused")

    # ---------------------------------------------------------------- escalation
    @workflow.update
    def acknowledge_escalation(self, cmd: AcknowledgeEscalation) -> CommandResult:
        case, sla = self.case, self.case.state.sla
        assert sla is not None
        sla.acknowledged_level, sla.acknowledged_by = sla.escalation_level, cmd.actor
        stops = case.stage_def.escalations_stop_when_acknowledged
        case.event(
            "sla_escalation_acknowledged",
            cmd.actor,
            {
                "stage": case.stage_def.key,
                "level": sla.escalation_level,
                "note": cmd.note,
                "later_levels_held": stops,
            },
        )
        case.touch()
        later = "later levels are held back" if stops else "later levels still follow"
        return self._result(f"escalation level {sla.escalation_level} acknowledged; {later}")

    @acknowledge_escalation.validator
    def _check_acknowledge(self, cmd: AcknowledgeEscalation) -> None:
        self._require(cmd, "an escalation acknowledgement")
        sla = self.case.state.sla
        if sla is None or sla.escalation_level == 0:
            raise WrongState(f"case {self.case.state.case_ref} has no escalation to acknowledge")
        if sla.acknowledged_level >= sla.escalation_level:
            raise WrongState(
                f"escalation level {sla.escalation_level} was already acknowledged by "
                f"{sla.acknowledged_by}"
            )

    # ---------------------------------------------------------------- work queues
    @workflow.update
    def assign(self, cmd: AssignWork) -> CommandResult:
        """Take, assign, reassign or release the case or one of its steps (audited; both
        people are told)."""
        return self._result(assignment.apply(self.case, cmd))

    @assign.validator
    def _check_assign(self, cmd: AssignWork) -> None:
        self._require(cmd, "an assignment", paused_ok=True)
        assignment.validate(self.case, cmd)

    # ---------------------------------------------------------------- elements
    @workflow.update
    def decide(self, cmd: Decide) -> CommandResult:
        self.case.staff_acted()
        return self._result(approval.decide(self.case, cmd))

    @decide.validator
    def _check_decide(self, cmd: Decide) -> None:
        self._require(cmd, "a decision")
        approval.validate(self.case, cmd)

    @workflow.update
    def complete_task(self, cmd: CompleteTaskCmd) -> CommandResult:
        self.case.staff_acted()
        return self._result(task.complete(self.case, cmd))

    @complete_task.validator
    def _check_complete_task(self, cmd: CompleteTaskCmd) -> None:
        self._require(cmd, f"task {cmd.task_key}")
        task.validate_complete(self.case, cmd)

    @workflow.update
    def tick(self, cmd: TickItem) -> CommandResult:
        self.case.staff_acted()
        return self._result(checklist.tick(self.case, cmd, apply=True))

    @tick.validator
    def _check_tick(self, cmd: TickItem) -> None:
        self._require(cmd, "a checklist tick")
        checklist.tick(self.case, cmd, apply=False)

    @workflow.update
    def waive_documents(self, cmd: WaiveDocuments) -> CommandResult:
        self.case.staff_acted()
        return self._result(documents.waive(self.case, cmd, apply=True))

    @waive_documents.validator
    def _check_waive(self, cmd: WaiveDocuments) -> None:
        self._require(cmd, "a document waiver")
        documents.waive(self.case, cmd, apply=False)

    @workflow.update
    def review_document(self, cmd: ReviewDocument) -> CommandResult:
        self.case.staff_acted()
        return self._result(documents.review(self.case, cmd, apply=True))

    @review_document.validator
    def _check_review(self, cmd: ReviewDocument) -> None:
        self._require(cmd, "a document review")
        documents.review(self.case, cmd, apply=False)

    @workflow.update
    def respond_to_proposal(self, cmd: ProposalResponse) -> CommandResult:
        if cmd.role not in CLIENT_ROLES:  # staff answering for the client
            self.case.staff_acted()
        return self._result(client_acceptance.respond(self.case, cmd, apply=True))

    @respond_to_proposal.validator
    def _check_proposal(self, cmd: ProposalResponse) -> None:
        self._require(cmd, "an answer to a proposal", client_ok=True)
        client_acceptance.respond(self.case, cmd, apply=False)

    @workflow.update
    def skip(self, cmd: SkipElement) -> CommandResult:
        case = self.case
        element = case.state.element(cmd.element)
        assert element is not None
        case.staff_acted()
        finish(case, element, by=cmd.actor, status=ElementStatus.SKIPPED, outcome="skipped")
        element.note = cmd.reason
        case.event(
            "element_skipped",
            cmd.actor,
            {"element": cmd.element, "kind": element.kind, "reason": cmd.reason},
        )
        return self._result(f"{element.title} skipped by {cmd.actor}")

    @skip.validator
    def _check_skip(self, cmd: SkipElement) -> None:
        self._require(cmd, "a skip")
        if cmd.role not in ("case_manager", "admin"):
            raise Forbidden("only a case manager may skip a step")
        case = self.case
        element = case.state.element(cmd.element)
        if element is None:
            known = [e.key for s in case.case_type.stages for e in s.elements]
            if cmd.element in known:
                raise WrongState(f"{cmd.element} is not part of the current stage")
            raise Invalid(f"case type {case.case_type.name} has no element {cmd.element!r}")
        if element.finished:
            raise WrongState(f"{element.title} is already {element.status.value}")
        spec = case.element_def(cmd.element)
        failed = element.kind == "automation" and (element.outcome or "").startswith("failed")
        if not spec.optional and not failed:
            raise WrongState(f"{element.title} is not optional; it cannot be skipped")

    # ---------------------------------------------------------------- moving the case
    @workflow.update
    def send_back(self, cmd: SendBackCmd) -> CommandResult:
        self.case.jump = (cmd.to_stage, "sent_back", cmd.actor, cmd.reason)
        self.case.staff_acted()
        self.case.touch()
        return self._result(f"sent back to {cmd.to_stage} by {cmd.actor}")

    @send_back.validator
    def _check_send_back(self, cmd: SendBackCmd) -> None:
        self._require(cmd, "a send-back")
        keys = [s.key for s in self.case.case_type.stages]
        if cmd.to_stage not in keys:
            raise Invalid(f"{cmd.to_stage} is not a stage of this case; stages: {keys}")
        if keys.index(cmd.to_stage) >= keys.index(self.case.state.stage):
            raise WrongState(f"can only send back to a stage before {self.case.state.stage}")

    @workflow.update(name="reopen")  # the method name reads as file I/O to determinism checks
    def reopen_case(self, cmd: ReopenCase) -> CommandResult:
        target = self._reopen_target(cmd.to_stage)
        self.case.jump = (target, "reopened", cmd.actor, cmd.reason)
        self.case.touch()
        return self._result(f"reopened at {target} by {cmd.actor}")

    @reopen_case.validator
    def _check_reopening(self, cmd: ReopenCase) -> None:
        self._require(cmd, "a reopen", resolved_only=True)
        if cmd.role not in ("case_manager", "admin"):
            raise Forbidden("only a case manager may reopen a case")
        self._reopen_target(cmd.to_stage)

    def _reopen_target(self, wanted: str | None) -> str:
        case_type = self.case.case_type
        target = wanted or case_type.lifecycle.reopen_stage or case_type.stages[-1].key
        if target not in [s.key for s in case_type.stages]:
            raise Invalid(f"{target} is not a stage of this case type")
        return target

    @workflow.update
    def cancel(self, cmd: CancelCaseCmd) -> CommandResult:
        self.case.cancel_requested = (cmd.actor, cmd.closure_code, cmd.reason)
        self.case.touch()
        return self._result(f"cancelled by {cmd.actor} ({cmd.closure_code})")

    @cancel.validator
    def _check_cancel(self, cmd: CancelCaseCmd) -> None:
        self._require(cmd, "a cancellation", paused_ok=True)
        if cmd.role not in ("case_manager", "admin"):
            raise Forbidden("only a case manager may cancel a case")
        codes = self.case.case_type.closure_codes
        if cmd.closure_code not in codes:
            raise Invalid(f"closure_code must be one of: {', '.join(codes)}")

    # ---------------------------------------------------------------- the client speaks
    @workflow.update
    def client_message(self, cmd: ClientMessage) -> CommandResult:
        case = self.case
        case.event("client_message", cmd.actor, {"text": cmd.text, "channel": cmd.channel})
        lifecycle = case.case_type.lifecycle
        reopens = case.state.status == EngineStatus.RESOLVED and lifecycle.reopen_on_client_message
        if workflow.patched(CLIENT_REPLY_NOTICE):
            self._tell_owner_of_reply(cmd, reopened=reopens)
        if reopens:
            target = self._reopen_target(None)
            case.jump = (target, "reopened", cmd.actor, "the client wrote on a resolved case")
            case.touch()
            return self._result("thank you; your case is open again and we will reply")
        case.touch()
        return self._result("thank you; your message is on the case")

    def _tell_owner_of_reply(self, cmd: ClientMessage, *, reopened: bool) -> None:
        """Whoever works the case hears of the reply: its holder, else the stage's owners."""
        case = self.case
        notice = {
            "stage": case.stage_def.title,
            "excerpt": cmd.text[:500],
            "channel": cmd.channel,
            "reopened": reopened,
        }
        if case.state.assignee is not None:
            case.tell_person(
                "client_replied", case.state.assignee, case.state.assignee_team, notice
            )
        else:
            case.tell_staff("client_replied", [case.stage_def.owner_role], notice)

    @client_message.validator
    def _check_client_message(self, cmd: ClientMessage) -> None:
        self._require(cmd, "a message", paused_ok=True, resolved_ok=True, client_ok=True)

    @workflow.update
    def feedback(self, cmd: Feedback) -> CommandResult:
        case = self.case
        case.state.fields["feedback"] = {"csat": cmd.csat, "nps": cmd.nps}
        case.event(
            "feedback", cmd.actor, {"csat": cmd.csat, "nps": cmd.nps, "comment": cmd.comment}
        )
        lifecycle = case.case_type.lifecycle
        low = (cmd.csat is not None and cmd.csat <= lifecycle.csat_reopen_at_or_below) or (
            cmd.nps is not None and cmd.nps <= lifecycle.nps_reopen_at_or_below
        )
        if case.state.status == EngineStatus.RESOLVED and lifecycle.reopen_on_low_feedback and low:
            target = self._reopen_target(None)
            case.jump = (target, "reopened", cmd.actor, "low satisfaction before closing")
            case.touch()
            return self._result("sorry to hear that; we have reopened your case")
        case.touch()
        return self._result("thank you for your feedback")

    @feedback.validator
    def _check_feedback(self, cmd: Feedback) -> None:
        self._require(cmd, "feedback", paused_ok=True, resolved_ok=True, client_ok=True)

    @workflow.signal
    def update_preferences(self, prefs: ContactPreferences) -> None:
        """Signal: the client changed how they want to hear from us; later messages follow."""
        case = self.case
        case.client = case.client.model_copy(update={"contact_preferences": prefs})
        case.state.fields["client"] = case.client.model_dump(mode="json")

    @workflow.signal
    def documents_uploaded(self, cmd: DocumentsUploaded) -> None:
        """Signal (fire-and-forget from the upload endpoint): verification runs next."""
        if self.case.state.status.is_final:
            return
        counters = self.case.state.counters
        counters["uploads"] = counters.get("uploads", 0) + 1
        self.case.touch()

    # ---------------------------------------------------------------- reading
    @workflow.query
    def state(self) -> CaseSnapshot:
        return snapshot.build(self.case, workflow.now())

    @workflow.query
    def sla_clock(self) -> SlaClockView | None:
        """The current stage's SLA clock, raw, for ``GET /cases/{ref}/sla`` to explain."""
        return snapshot.sla_clock(self.case)

    @workflow.query
    def summary(self) -> CaseSummary:
        """Where the case is and which commands it takes now: cheap, for polling."""
        return snapshot.summary(self.case)


__all__ = ["CaseWorkflow", "timedelta"]
