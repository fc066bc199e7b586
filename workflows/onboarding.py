"""OnboardingCaseWorkflow: one long-lived workflow per client onboarding case.

Read ``run`` and ``_run_stage`` top to bottom: they are the business process. Each stage of the
pinned plan is entered, its automatic work done, and then the case waits until the stage's human
gate is passed and its manual tasks are done. All waiting goes through ``_wait``, which is where
the SLA clock, pauses and cancellation live. Projection to Postgres, search attributes and the
Temporal UI summary are plumbing at the bottom of the class.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case import (
        Approval,
        CaseInput,
        CaseOutcome,
        CaseState,
        SlaView,
        StageInterval,
        TaskState,
    )
    from schemas.client import ContactPreferences
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
    )
    from schemas.enums import CaseStatus, Decision, SlaState, Stage
    from schemas.plan import CasePlan, Gate, PlanCaseInput, StageSpec, TaskKind
    from schemas.projection import (
        CasePatch,
        CaseSeed,
        CloseAccountInput,
    )
    from workflows import messages
    from workflows.sla import SlaClock

from workflows.case_automation import AutomationMixin
from workflows.case_base import (
    EXTERNAL_RETRY,
    STORE_RETRY,
    STORE_TIMEOUT,
    V2,
    StageEnd,
    WrongState,
)

__all__ = ["OnboardingCaseWorkflow", "WrongState"]


__all__ = ["OnboardingCaseWorkflow", "WrongState"]


@workflow.defn
class OnboardingCaseWorkflow(AutomationMixin):
    @workflow.run
    async def run(self, inp: CaseInput) -> CaseOutcome:
        self._ref = inp.case_ref
        self._client = inp.client
        self._v2 = workflow.patched(V2)
        started = workflow.now()
        self._plan = await workflow.execute_local_activity(
            "plan_case",
            PlanCaseInput(client=inp.client),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            result_type=CasePlan,
        )
        self._status = CaseStatus.OPEN
        await self._project(
            seed=CaseSeed(client=inp.client, requested_by=inp.requested_by),
            case=CasePatch(
                status=CaseStatus.OPEN,
                playbook_version=self._plan.playbook_version,
                flags=self._plan.flags,
            ),
            events=[
                self._event(
                    "case-opened",
                    "case_opened",
                    inp.requested_by,
                    {
                        "playbook_version": self._plan.playbook_version,
                        "stages": [s.stage.value for s in self._plan.stages],
                        "rules": self._plan.applied_rules,
                    },
                )
            ],
        )

        if self._v2:
            self._notify(messages.case_created(self._ref, inp.client, self._plan, self._eta()))

        stages = self._plan.stages
        index = 0
        while index < len(stages):
            end = await self._run_stage(stages[index])
            if end == StageEnd.CLOSED:
                break
            if end == StageEnd.SENT_BACK:
                index = await self._go_back()
                continue
            index += 1

        if not self._status.is_closed:
            await self._close(CaseStatus.COMPLETED, reason=None, actor="system")
        await self._messages.drain()
        await self._webhooks.drain()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return CaseOutcome(
            case_ref=self._ref,
            status=self._status,
            closure_reason=self._closure_reason,
            duration=workflow.now() - started,
        )

    async def _run_stage(self, spec: StageSpec) -> StageEnd:
        """Enter, automate, then wait for the gate and the manual tasks (racing the SLA)."""
        await self._enter_stage(spec)
        self._announce_stage(spec)
        for task in spec.tasks:
            if task.kind == TaskKind.AUTO and not self._tasks[task.key].done:
                await self._wait(lambda: True)  # honours a pause before any automation
                if self._interrupted():
                    break
                await self._run_automatic_task(task.key)
        if spec.gate == Gate.DOCUMENTS and self._verifies_documents():
            await self._collect_documents()
        if spec.gate == Gate.APPROVAL and spec.auto_approve_when_clear and self._v2:
            await self._approve_if_straight_through()
        await self._wait(lambda: self._stage_finished(spec))
        if self._v2 and not self._interrupted() and not self._status.is_closed:
            if (
                spec.gate == Gate.DOCUMENTS
                and self._documents
                and self._documents.waive_verification
            ):
                waiver = self._documents
                await self._project(
                    events=[
                        self._event(
                            f"documents-waived-{len(self._history)}",
                            "documents_waived",
                            waiver.actor,
                            {"note": waiver.note},
                        )
                    ]
                )
            self._announce_gate_passed(spec)

        if self._cancel is not None:
            cancel = self._cancel
            reason = f"{cancel.closure_code}: {cancel.reason}" if cancel.reason else None
            await self._close(
                CaseStatus.CANCELLED, reason=reason or cancel.closure_code, actor=cancel.actor
            )
            return StageEnd.CLOSED
        if self._send_back is not None:
            return StageEnd.SENT_BACK
        if self._rejection is not None:
            await self._close(
                CaseStatus.REJECTED,
                reason=self._rejection.reason or "rejected in compliance review",
                actor=self._rejection.reviewer,
            )
            return StageEnd.CLOSED
        return StageEnd.DONE

    async def _enter_stage(self, spec: StageSpec) -> None:
        """Close the previous stage's interval, open this one's, start its SLA clock."""
        now = workflow.now()
        closing = self._close_current_interval("completed")
        self._stage = spec.stage
        self._clock = SlaClock.start(spec, now)
        interval = StageInterval(
            seq=len(self._history) + 1,
            stage=spec.stage,
            entered_at=now,
            sla_budget_seconds=spec.sla.total_seconds() if spec.sla else None,
        )
        self._history.append(interval)
        for task in spec.tasks:
            self._tasks.setdefault(
                task.key,
                TaskState(
                    key=task.key,
                    title=task.title,
                    stage=spec.stage,
                    kind=task.kind.value,
                    assignee_role=task.assignee_role,
                ),
            )
        await self._project(
            case=CasePatch(stage=spec.stage, sla_state=self._sla_state()),
            intervals=[*closing, interval],
            tasks=[self._tasks[t.key] for t in spec.tasks],
            events=[
                self._event(
                    f"stage-{interval.seq}",
                    "stage_entered",
                    "system",
                    {"stage": spec.stage.value, "sla_seconds": interval.sla_budget_seconds},
                )
            ],
        )
        await self._sync_status()

    async def _go_back(self) -> int:
        """Send-back: close this visit, forget the gates from the target on, return its index."""
        assert self._plan is not None and self._send_back is not None
        command, self._send_back = self._send_back, None
        target = [s.stage for s in self._plan.stages].index(command.to_stage)
        redo = {s.stage for s in self._plan.stages[target:]}
        if Stage.DOCUMENT_COLLECTION in redo:
            self._documents = None
        if Stage.COMPLIANCE_REVIEW in redo:
            self._approvals, self._rejection = [], None
        if Stage.FINAL_REVIEW in redo:
            self._sign_off = None
        await self._project(
            intervals=self._close_current_interval("sent_back"),
            events=[
                self._event(
                    f"sent-back-{len(self._history)}",
                    "sent_back",
                    command.actor,
                    {
                        "from": self._stage.value,
                        "to": command.to_stage.value,
                        "reason": command.reason,
                    },
                )
            ],
        )
        return target

    async def _close(self, status: CaseStatus, *, reason: str | None, actor: str) -> None:
        outcome = "completed" if status == CaseStatus.COMPLETED else status.value
        closing = self._close_current_interval(outcome)
        if self._paused is not None and self._pauses and self._pauses[-1].resumed_at is None:
            self._pauses[-1].resumed_at = workflow.now()
            self._pauses[-1].resumed_by = actor
            self._pauses[-1].resume_reason = f"case {status.value}"
        self._status, self._closure_reason, self._paused = status, reason, None
        if status != CaseStatus.COMPLETED and self._account_number is not None:
            await workflow.execute_activity(  # saga: undo provisioning
                "close_account",
                CloseAccountInput(
                    case_ref=self._ref,
                    at=workflow.now(),
                    reason=f"case {status.value}: {reason or ''}".strip(),
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=EXTERNAL_RETRY,
            )
            if self._v2:
                self._webhook(
                    "account.closed", {"account_number": self._account_number, "reason": reason}
                )
        if self._v2:
            self._webhook(
                f"case.{status.value}",
                {"reason": reason, "account_number": self._account_number},
            )
        await self._project(
            case=CasePatch(
                status=status,
                closed_at=workflow.now(),
                closure_reason=reason,
                sla_state=self._sla_state(),
                priority=self._priority,
            ),
            intervals=closing,
            pauses=self._pauses[-1:] if self._pauses else [],
            events=[
                self._event(
                    f"closed-{status.value}",
                    f"case_{status.value}",
                    actor,
                    {"reason": reason} if reason else {},
                )
            ],
        )

    @workflow.signal
    def documents_received(self, cmd: DocumentsReceived) -> None:
        """Signal: documents are in. With a checklist, an upload triggers verification; a case
        manager's waiver accepts them as seen. Ignored (and logged) outside document collection."""
        if self._stage != Stage.DOCUMENT_COLLECTION or self._status.is_closed:
            workflow.logger.warning("documents_received ignored at stage %s", self._stage)
            return
        if self._verifies_documents() and not cmd.waive_verification:
            self._uploads += 1
        else:
            self._documents = cmd

    @workflow.signal
    def update_preferences(self, prefs: ContactPreferences) -> None:
        """Signal: the client changed how they want to hear from us; later messages follow it."""
        if self._client is not None:
            self._client = self._client.model_copy(update={"contact_preferences": prefs})

    @workflow.signal
    def pause(self, cmd: PauseRequest) -> None:
        """Signal: halt automation and stop the SLA clock (manual intervention gate)."""
        self._controls.append(cmd)

    @workflow.signal
    def resume(self, cmd: ResumeRequest) -> None:
        self._controls.append(cmd)

    @workflow.update
    async def decide_compliance(self, cmd: ComplianceDecision) -> CommandAccepted:
        at = workflow.now()
        if cmd.decision == Decision.REJECT:
            self._rejection = cmd
        else:
            self._approvals.append(
                Approval(
                    reviewer=cmd.reviewer, decision=cmd.decision.value, reason=cmd.reason, at=at
                )
            )
        await self._project(
            events=[
                self._event(
                    f"compliance-{cmd.decision.value}-{cmd.reviewer}",
                    "compliance_decision",
                    cmd.reviewer,
                    {"decision": cmd.decision.value, "reason": cmd.reason},
                )
            ]
        )
        if cmd.decision == Decision.REJECT:
            return self._accepted(f"compliance rejected by {cmd.reviewer}")
        needed = self._approvals_needed()
        if len(self._approvals) < needed:
            return self._accepted(
                f"approval {len(self._approvals)} of {needed} recorded from {cmd.reviewer}; "
                "a second, independent reviewer must approve"
            )
        return self._accepted(f"compliance approved by {cmd.reviewer}")

    @decide_compliance.validator
    def _validate_compliance(self, cmd: ComplianceDecision) -> None:
        self._require_active(Stage.COMPLIANCE_REVIEW, "a compliance decision")
        if self._rejection is not None or len(self._approvals) >= self._approvals_needed():
            raise WrongState("compliance review is already decided")
        if any(a.reviewer.casefold() == cmd.reviewer.casefold() for a in self._approvals):
            raise WrongState(
                f"{cmd.reviewer} has already approved this case; "
                "the second approval must come from a different reviewer"
            )
        open_tasks = self._open_manual_tasks(Stage.COMPLIANCE_REVIEW)
        if open_tasks and cmd.decision == Decision.APPROVE:  # rejecting needs no more work
            raise WrongState("finish these tasks before deciding: " + ", ".join(open_tasks))

    @workflow.update
    async def sign_off(self, cmd: FinalSignOff) -> CommandAccepted:
        self._sign_off = cmd
        await self._project(
            events=[
                self._event(
                    "final-sign-off",
                    "final_sign_off",
                    cmd.reviewer,
                    {"note": cmd.note} if cmd.note else {},
                )
            ]
        )
        return self._accepted(f"final review signed off by {cmd.reviewer}")

    @sign_off.validator
    def _validate_sign_off(self, cmd: FinalSignOff) -> None:
        self._require_active(Stage.FINAL_REVIEW, "a final sign-off")
        if self._sign_off is not None:
            raise WrongState("final review is already signed off")

    @workflow.update
    async def complete_task(self, cmd: CompleteTask) -> CommandAccepted:
        await self._mark_task_done(cmd.task_key, actor=cmd.actor, note=cmd.note)
        return self._accepted(f"task {cmd.task_key} completed by {cmd.actor}")

    @complete_task.validator
    def _validate_complete_task(self, cmd: CompleteTask) -> None:
        task = self._tasks.get(cmd.task_key)
        if task is None:
            planned = [t.key for s in self._plan.stages for t in s.tasks] if self._plan else []
            if cmd.task_key in planned:
                raise WrongState(f"task {cmd.task_key} belongs to a later stage")
            raise WrongState(f"case {self._ref} has no task {cmd.task_key}")
        self._require_active(task.stage, f"task {cmd.task_key}")
        if task.kind != TaskKind.MANUAL.value:
            raise WrongState(f"task {cmd.task_key} is automatic; it completes by itself")
        if task.done:
            raise WrongState(f"task {cmd.task_key} is already done (by {task.done_by})")

    @workflow.update
    async def send_back(self, cmd: SendBack) -> CommandAccepted:
        self._send_back = cmd
        return self._accepted(f"sent back to {cmd.to_stage.value} by {cmd.actor}")

    @send_back.validator
    def _validate_send_back(self, cmd: SendBack) -> None:
        self._require_not_closed("a send-back")
        if self._paused is not None:
            raise WrongState("the case is paused; resume it before sending it back")
        order = [s.stage for s in self._plan.stages] if self._plan else []
        if cmd.to_stage not in order:
            raise WrongState(f"{cmd.to_stage.value} is not part of this case's plan")
        if order.index(cmd.to_stage) >= order.index(self._stage):
            raise WrongState(f"can only send back to an earlier stage than {self._stage.value}")
        if self._send_back is not None:
            raise WrongState("a send-back is already under way")

    @workflow.update
    async def cancel(self, cmd: CancelCase) -> CommandAccepted:
        self._cancel = cmd
        return self._accepted(f"cancelled by {cmd.actor} ({cmd.closure_code})")

    @cancel.validator
    def _validate_cancel(self, cmd: CancelCase) -> None:
        self._require_not_closed("a cancellation")
        if self._cancel is not None:
            raise WrongState("the case is already being cancelled")

    @workflow.query
    def state(self) -> CaseState:
        plan = self._plan
        now = workflow.now()
        clock = self._clock
        sla = None
        if clock is not None:
            remaining = clock.remaining(now)
            sla = SlaView(
                state=self._sla_state() or SlaState.ON_TRACK,
                budget_seconds=clock.budget.total_seconds() if clock.budget else None,
                active_seconds=clock.active(now).total_seconds(),
                remaining_seconds=remaining.total_seconds() if remaining is not None else None,
                due_at=(now + remaining) if remaining is not None and clock.running else None,
                escalation_level=clock.escalation_level,
            )
        return CaseState(
            case_ref=self._ref,
            status=self._status,
            stage=self._stage,
            awaiting=self._awaiting(),
            playbook_version=plan.playbook_version if plan else None,
            flags=self._flags(),
            stages_planned=[s.stage for s in plan.stages] if plan else [],
            history=list(self._history),
            tasks=list(self._tasks.values()),
            sla=sla,
            priority=self._priority,
            paused_by=self._paused.actor if self._paused else None,
            ever_paused=bool(self._pauses),
            pauses=list(self._pauses),
            approvals=list(self._approvals),
            approvals_required=self._approvals_needed(),
            closure_reason=self._closure_reason,
            account_number=self._account_number,
        )
