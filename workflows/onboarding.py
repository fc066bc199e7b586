"""OnboardingCaseWorkflow: one long-lived workflow per client onboarding case.

Read ``run`` top to bottom: it is the business process. Each stage of the pinned plan is entered,
its automatic work is done, then the case waits for the stage's human gate and manual tasks.
Everything else (projection to Postgres, search attributes, the UI summary) is plumbing kept in
small helpers below.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.accounts import AccountActivities
    from activities.case_store import CaseStoreActivities
    from activities.planning import PlanCaseInput, PlanningActivities
    from schemas.case import CaseInput, CaseOutcome, CaseState, StageInterval, TaskState
    from schemas.commands import (
        CommandAccepted,
        ComplianceDecision,
        DocumentsReceived,
        FinalSignOff,
    )
    from schemas.enums import CaseStatus, Decision, SlaState, Stage
    from schemas.plan import CasePlan, Gate, StageSpec, TaskKind
    from schemas.projection import (
        AuditEvent,
        CasePatch,
        CaseSeed,
        Projection,
        ProvisionAccountInput,
    )
    from workflows import search_attributes as sa

# Postgres blips must never fail a case: keep retrying, back off to a minute.
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
STORE_TIMEOUT = timedelta(seconds=30)
EXTERNAL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=["BusinessRejection"],
)


class WrongState(ApplicationError):
    """A command that does not fit where the case is. The API turns it into 409."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="WrongState", non_retryable=True)


@workflow.defn
class OnboardingCaseWorkflow:
    def __init__(self) -> None:
        self._ref = ""
        self._status = CaseStatus.DRAFT
        self._stage = Stage.ACKNOWLEDGEMENT
        self._plan: CasePlan | None = None
        self._history: list[StageInterval] = []
        self._tasks: dict[str, TaskState] = {}
        self._version = 0
        self._documents: DocumentsReceived | None = None
        self._compliance: ComplianceDecision | None = None
        self._sign_off: FinalSignOff | None = None
        self._account_number: str | None = None
        self._closure_reason: str | None = None
        self._published: dict[str, str] = {}

    # ------------------------------------------------------------------ the process
    @workflow.run
    async def run(self, inp: CaseInput) -> CaseOutcome:
        self._ref = inp.case_ref
        started = workflow.now()
        self._plan = await workflow.execute_local_activity_method(
            PlanningActivities.plan_case,
            PlanCaseInput(client=inp.client),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
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
                AuditEvent(
                    key="case-opened",
                    kind="case_opened",
                    actor=inp.requested_by,
                    detail={
                        "playbook_version": self._plan.playbook_version,
                        "stages": [s.stage.value for s in self._plan.stages],
                        "rules": self._plan.applied_rules,
                    },
                )
            ],
        )

        for spec in self._plan.stages:
            await self._enter_stage(spec)
            await self._run_automatic_tasks(spec)
            await self._wait_for_gate(spec)
            if self._status.is_closed:
                break
            await self._wait_for_manual_tasks(spec)

        if not self._status.is_closed:
            await self._close(CaseStatus.COMPLETED, reason=None, actor="system")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return CaseOutcome(
            case_ref=self._ref,
            status=self._status,
            closure_reason=self._closure_reason,
            duration=workflow.now() - started,
        )

    # ------------------------------------------------------------------ stage steps
    async def _enter_stage(self, spec: StageSpec) -> None:
        """Close the previous stage's interval, open this one's, and tell everyone."""
        now = workflow.now()
        closing = self._close_current_interval("completed")
        self._stage = spec.stage
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
            case=CasePatch(stage=spec.stage, sla_state=SlaState.ON_TRACK),
            intervals=[*closing, interval],
            events=[
                AuditEvent(
                    key=f"stage-{interval.seq}",
                    kind="stage_entered",
                    detail={"stage": spec.stage.value},
                )
            ],
        )

    async def _run_automatic_tasks(self, spec: StageSpec) -> None:
        for task in spec.tasks:
            if task.kind != TaskKind.AUTO or self._tasks[task.key].done:
                continue
            if task.key == "provision_account":
                account = await workflow.execute_activity_method(
                    AccountActivities.provision_account,
                    ProvisionAccountInput(case_ref=self._ref, at=workflow.now()),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=EXTERNAL_RETRY,
                )
                self._account_number = account.account_number
            await self._mark_task_done(task.key, actor="system")

    async def _wait_for_gate(self, spec: StageSpec) -> None:
        """Wait for the stage's human gate. Rejection closes the case."""
        if spec.gate == Gate.DOCUMENTS:
            await self._wait(lambda: self._documents is not None)
        elif spec.gate == Gate.APPROVAL:
            await self._wait(lambda: self._compliance is not None)
            decision = self._compliance
            assert decision is not None
            if decision.decision == Decision.REJECT:
                await self._close(
                    CaseStatus.REJECTED,
                    reason=decision.reason or "rejected in compliance review",
                    actor=decision.reviewer,
                )
        elif spec.gate == Gate.SIGN_OFF:
            await self._wait(lambda: self._sign_off is not None)

    async def _wait_for_manual_tasks(self, spec: StageSpec) -> None:
        keys = [t.key for t in spec.tasks if t.kind == TaskKind.MANUAL]
        if keys:
            await self._wait(lambda: all(self._tasks[k].done for k in keys))

    async def _wait(self, ready: Callable[[], bool]) -> None:
        """The one place the case waits for people."""
        self._refresh_details()
        await workflow.wait_condition(lambda: bool(ready()) or self._status.is_closed)

    async def _close(self, status: CaseStatus, *, reason: str | None, actor: str) -> None:
        self._status = status
        self._closure_reason = reason
        outcome = {CaseStatus.COMPLETED: "completed"}.get(status, status.value)
        closing = self._close_current_interval(outcome)
        await self._project(
            case=CasePatch(status=status, closed_at=workflow.now(), closure_reason=reason),
            intervals=closing,
            events=[
                AuditEvent(
                    key=f"closed-{status.value}",
                    kind=f"case_{status.value}",
                    actor=actor,
                    detail={"reason": reason} if reason else {},
                )
            ],
        )

    async def _mark_task_done(self, key: str, *, actor: str) -> None:
        task = self._tasks[key]
        task.done, task.done_by, task.done_at = True, actor, workflow.now()
        await self._project(
            events=[
                AuditEvent(
                    key=f"task-{key}",
                    kind="task_completed",
                    actor=actor,
                    detail={"task": key, "stage": task.stage.value},
                )
            ]
        )

    # ------------------------------------------------------------------ messages
    @workflow.signal
    def documents_received(self, cmd: DocumentsReceived) -> None:
        """Signal: documents are in. Ignored (and logged) unless the case waits for them."""
        if self._stage != Stage.DOCUMENT_COLLECTION or self._status.is_closed:
            workflow.logger.warning("documents_received ignored at stage %s", self._stage)
            return
        self._documents = cmd

    @workflow.update
    async def decide_compliance(self, cmd: ComplianceDecision) -> CommandAccepted:
        self._compliance = cmd
        await self._project(
            events=[
                AuditEvent(
                    key=f"compliance-{cmd.decision.value}",
                    kind="compliance_decision",
                    actor=cmd.reviewer,
                    detail={"decision": cmd.decision.value, "reason": cmd.reason},
                )
            ]
        )
        return self._accepted(f"compliance {cmd.decision.value}d by {cmd.reviewer}")

    @decide_compliance.validator
    def _validate_compliance(self, cmd: ComplianceDecision) -> None:
        self._require_stage(Stage.COMPLIANCE_REVIEW, "a compliance decision")
        if self._compliance is not None:
            raise WrongState("compliance review is already decided")

    @workflow.update
    async def sign_off(self, cmd: FinalSignOff) -> CommandAccepted:
        self._sign_off = cmd
        await self._project(
            events=[
                AuditEvent(
                    key="final-sign-off",
                    kind="final_sign_off",
                    actor=cmd.reviewer,
                    detail={"note": cmd.note} if cmd.note else {},
                )
            ]
        )
        return self._accepted(f"final review signed off by {cmd.reviewer}")

    @sign_off.validator
    def _validate_sign_off(self, cmd: FinalSignOff) -> None:
        self._require_stage(Stage.FINAL_REVIEW, "a final sign-off")

    @workflow.query
    def state(self) -> CaseState:
        plan = self._plan
        return CaseState(
            case_ref=self._ref,
            status=self._status,
            stage=self._stage,
            awaiting=self._awaiting(),
            playbook_version=plan.playbook_version if plan else None,
            flags=list(plan.flags) if plan else [],
            stages_planned=[s.stage for s in plan.stages] if plan else [],
            history=list(self._history),
            tasks=list(self._tasks.values()),
            closure_reason=self._closure_reason,
        )

    # ------------------------------------------------------------------ plumbing
    def _require_stage(self, stage: Stage, what: str) -> None:
        if self._status.is_closed:
            raise WrongState(f"case {self._ref} is {self._status.value}; it takes no {what}")
        if self._stage != stage:
            raise WrongState(
                f"case {self._ref} is at {self._stage.value}, not {stage.value}; "
                f"it cannot take {what} now"
            )

    def _accepted(self, message: str) -> CommandAccepted:
        return CommandAccepted(
            case_ref=self._ref, stage=self._stage, status=self._status.value, message=message
        )

    def _awaiting(self) -> str | None:
        if self._status.is_closed or self._plan is None:
            return None
        spec = self._plan.spec(self._stage)
        if spec.gate == Gate.DOCUMENTS and self._documents is None:
            return "client documents"
        if spec.gate == Gate.APPROVAL and self._compliance is None:
            return "compliance decision"
        if spec.gate == Gate.SIGN_OFF and self._sign_off is None:
            return "final review sign-off"
        open_tasks = [
            t.title for t in self._tasks.values() if t.stage == self._stage and not t.done
        ]
        if open_tasks:
            return "tasks: " + ", ".join(open_tasks)
        return "automation"

    def _close_current_interval(self, outcome: str) -> list[StageInterval]:
        if not self._history or self._history[-1].exited_at is not None:
            return []
        current = self._history[-1]
        current.exited_at = workflow.now()
        current.outcome = outcome
        current.active_seconds = (current.exited_at - current.entered_at).total_seconds()
        current.paused_seconds = 0.0
        return [current]

    async def _project(
        self,
        *,
        seed: CaseSeed | None = None,
        case: CasePatch | None = None,
        intervals: list[StageInterval] | None = None,
        events: list[AuditEvent] | None = None,
    ) -> None:
        """Write the read model (local activity: cheap, idempotent) and refresh operator views."""
        self._version += 1
        await workflow.execute_local_activity_method(
            CaseStoreActivities.project,
            Projection(
                case_ref=self._ref,
                seed=seed,
                version=self._version,
                at=workflow.now(),
                case=case or CasePatch(),
                intervals=intervals or [],
                events=events or [],
            ),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
        )
        self._publish_search_attributes()
        self._refresh_details()

    def _publish_search_attributes(self) -> None:
        """Upsert only what changed: every upsert is a history event (and a billable action)."""
        wanted = {sa.CASE_STAGE: self._stage.value, sa.CASE_STATUS: self._status.value}
        changed = [
            key.value_set(value)
            for key, value in wanted.items()
            if self._published.get(key.name) != value
        ]
        if changed:
            workflow.upsert_search_attributes(changed)
            self._published.update({k.name: v for k, v in wanted.items()})

    def _refresh_details(self) -> None:
        """What an operator sees on the workflow page in the Temporal UI."""
        workflow.set_current_details(
            f"**Case** {self._ref}  \n**Stage** {self._stage.value}  \n"
            f"**Status** {self._status.value}  \n**Waiting for** {self._awaiting() or '-'}"
        )
