"""OnboardingCaseWorkflow: one long-lived workflow per client onboarding case.

Read ``run`` and ``_run_stage`` top to bottom: they are the business process. Each stage of the
pinned plan is entered, its automatic work done, and then the case waits until the stage's human
gate is passed and its manual tasks are done. All waiting goes through ``_wait``, which is where
the SLA clock, pauses and cancellation live. Projection to Postgres, search attributes and the
Temporal UI summary are plumbing at the bottom of the class.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.accounts import AccountActivities
    from activities.case_store import CaseStoreActivities
    from activities.compliance import ComplianceActivities
    from activities.documents import DocumentActivities
    from activities.notifications import NotificationActivities
    from activities.planning import PlanCaseInput, PlanningActivities
    from activities.webhooks import WebhookActivities
    from schemas.case import (
        Approval,
        CaseInput,
        CaseOutcome,
        CaseState,
        PauseInterval,
        SlaView,
        StageInterval,
        TaskState,
    )
    from schemas.client import ClientProfile, ContactPreferences
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
    from schemas.compliance import RiskLevel, ScreenClientInput, ScreeningOutcome
    from schemas.documents import DocumentRef, VerifyDocumentsInput
    from schemas.enums import CaseStatus, Decision, SlaState, Stage
    from schemas.notifications import CallbackRequest, NotifyInput
    from schemas.plan import CasePlan, Gate, StageSpec, TaskKind
    from schemas.projection import (
        AuditEvent,
        CasePatch,
        CaseSeed,
        CloseAccountInput,
        Projection,
        ProvisionAccountInput,
    )
    from schemas.webhooks import WebhookEvent
    from workflows import messages
    from workflows import search_attributes as sa
    from workflows.lanes import Lane
    from workflows.sla import Milestone, MilestoneKind, SlaClock

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
SIDE_EFFECT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["InvalidTemplateContext"],
)
# Everything since issues #4/#5 (document verification, screening, notifications, webhooks)
# runs only for cases whose history carries this marker; older cases replay unchanged.
V2 = "onboarding-v2"
PRIORITIES = ("normal", "high", "urgent", "critical")
DUAL_APPROVAL_FLAGS = frozenset({"dual_approval", "high_risk"})


class StageEnd(StrEnum):
    DONE = "done"
    SENT_BACK = "sent_back"
    CLOSED = "closed"


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
        self._clock: SlaClock | None = None
        self._priority = "normal"
        # human input, per gate
        self._documents: DocumentsReceived | None = None
        self._approvals: list[Approval] = []
        self._rejection: ComplianceDecision | None = None
        self._sign_off: FinalSignOff | None = None
        # manual intervention and lifecycle
        self._controls: deque[PauseRequest | ResumeRequest] = deque()
        self._paused: PauseRequest | None = None
        self._pauses: list[PauseInterval] = []
        self._send_back: SendBack | None = None
        self._cancel: CancelCase | None = None
        self._account_number: str | None = None
        self._closure_reason: str | None = None
        self._published: dict[str, str] = {}
        # since onboarding-v2
        self._v2 = False
        self._client: ClientProfile | None = None
        self._uploads = 0
        self._accepted_documents: list[DocumentRef] = []
        self._screening: ScreeningOutcome | None = None
        self._messages = Lane()
        self._webhooks = Lane()
        self._sent: dict[str, int] = {}
        self._documents_reminder_due = False

    # ================================================================== the process
    @workflow.run
    async def run(self, inp: CaseInput) -> CaseOutcome:
        self._ref = inp.case_ref
        self._client = inp.client
        self._v2 = workflow.patched(V2)
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

    def _stage_finished(self, spec: StageSpec) -> bool:
        if spec.gate == Gate.APPROVAL and self._rejection is not None:
            return True  # a rejection ends the review, open tasks or not
        return self._gate_passed(spec) and not self._open_manual_tasks(spec.stage)

    def _gate_passed(self, spec: StageSpec) -> bool:
        if spec.gate == Gate.DOCUMENTS:
            return self._documents is not None
        if spec.gate == Gate.APPROVAL:
            return self._rejection is not None or len(self._approvals) >= self._approvals_needed()
        if spec.gate == Gate.SIGN_OFF:
            return self._sign_off is not None
        return True

    async def _run_automatic_task(self, key: str) -> None:
        if key == "provision_account":
            account = await workflow.execute_activity_method(
                AccountActivities.provision_account,
                ProvisionAccountInput(case_ref=self._ref, at=workflow.now()),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=EXTERNAL_RETRY,
            )
            self._account_number = account.account_number
            if self._v2 and self._plan and self._client:
                self._webhook("account.provisioned", {"account_number": account.account_number})
                self._notify(
                    messages.setup_completed(
                        self._ref,
                        self._client,
                        self._plan,
                        account.account_number,
                        workflow.now(),
                        self._eta(),
                        self._occurrence("setup_completed"),
                    )
                )
        elif key == "sanctions_screening":
            await self._screen()
        elif key == "risk_assessment" and self._screening is None:
            await self._screen()  # the screening activity scores risk as well
        await self._mark_task_done(key, actor="system")

    async def _screen(self) -> None:
        """Sanctions/PEP screening plus risk score; a potential match needs a human review."""
        assert self._client is not None
        outcome = await workflow.execute_activity_method(
            ComplianceActivities.screen_client,
            ScreenClientInput(
                case_ref=self._ref, client=self._client, attempt_key=f"visit-{len(self._history)}"
            ),
            start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=EXTERNAL_RETRY,
        )
        self._screening = outcome
        if outcome.decision == "potential_match":
            self._add_task(
                "review_screening_match",
                f"Review potential match: {outcome.matched_name} ({outcome.score:.0f})",
            )
        if outcome.risk_level == RiskLevel.HIGH:
            self._add_task("enhanced_due_diligence", "Enhanced due diligence")
        detail = {
            "decision": outcome.decision,
            "score": outcome.score,
            "matched_name": outcome.matched_name,
            "list_entry_id": outcome.list_entry_id,
            "list_version": outcome.list_version,
            "risk_level": outcome.risk_level.value,
            "risk_factors": outcome.risk_factors,
        }
        await self._project(
            case=CasePatch(flags=self._flags()),
            tasks=[t for t in self._tasks.values() if t.stage == self._stage],
            events=[
                self._event(
                    f"screening-{len(self._history)}", "screening_completed", "system", detail
                )
            ],
        )

    async def _approve_if_straight_through(self) -> None:
        """No human needed when screening is clear, risk is not high and nothing is open."""
        screening = self._screening
        if (
            screening is None
            or screening.decision != "clear"
            or screening.risk_level == RiskLevel.HIGH
            or self._approvals_needed() > 1
            or self._open_manual_tasks(self._stage)
            or self._approvals
            or self._rejection is not None
        ):
            return
        reason = f"straight-through: screening clear, risk {screening.risk_level.value}"
        self._approvals.append(
            Approval(reviewer="system", decision="approve", reason=reason, at=workflow.now())
        )
        await self._project(
            events=[
                self._event(
                    f"auto-approved-{len(self._history)}",
                    "compliance_auto_approved",
                    "system",
                    {"reason": reason},
                )
            ]
        )

    def _documents_due(self) -> bool:
        """The case is collecting checklist documents and still lacks some."""
        return (
            self._stage == Stage.DOCUMENT_COLLECTION
            and self._verifies_documents()
            and self._documents is None
        )

    def _verifies_documents(self) -> bool:
        return self._v2 and self._plan is not None and bool(self._plan.document_checklist)

    async def _collect_documents(self) -> None:
        """Verify uploads against the checklist; ask the client again until they pass."""
        assert self._plan is not None and self._client is not None
        checklist = self._plan.document_checklist
        titles = {r.kind.value: r.title for r in checklist}
        last_problems: list[str] = []
        while self._documents is None and not self._interrupted():
            seen = self._uploads
            result = await workflow.execute_activity_method(
                DocumentActivities.verify_documents,
                VerifyDocumentsInput(
                    case_ref=self._ref, checklist=checklist, as_of=workflow.now().date()
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=STORE_RETRY,
            )
            if self._documents is not None:  # a waiver arrived meanwhile
                return
            if result.complete:
                self._accepted_documents = result.accepted
                self._documents = DocumentsReceived(
                    actor="verification", document_ids=[d.document_id for d in result.accepted]
                )
                await self._project(
                    events=[
                        self._event(
                            f"documents-verified-{len(self._history)}",
                            "documents_verified",
                            "system",
                            {"documents": [d.document_id for d in result.accepted]},
                        )
                    ]
                )
                return
            problems = [f"{p.kind.value}:{p.problem}" for p in result.problems]
            # Missing items were listed in the acknowledgement; ask again only when something
            # uploaded cannot be used (expired, too old, undated) and the client must act.
            invalid = any(p.problem != "missing" for p in result.problems)
            reminder, self._documents_reminder_due = self._documents_reminder_due, False
            if (problems != last_problems and invalid) or reminder:
                clock, now = self._clock, workflow.now()
                remaining = clock.remaining(now) if clock is not None else None
                respond_by = now + remaining if remaining is not None else None
                asked = self._occurrence("documents_needed")
                self._notify(
                    messages.documents_needed(
                        self._ref,
                        self._client,
                        result.problems,
                        titles,
                        self._eta(),
                        respond_by,
                        asked,
                    )
                )
                await self._project(
                    events=[
                        self._event(
                            f"documents-needed-{asked}",
                            "documents_needed",
                            "system",
                            {"problems": problems},
                        )
                    ]
                )
            last_problems = problems

            def new_upload(seen: int = seen) -> bool:
                return (
                    self._uploads > seen
                    or self._documents is not None
                    or self._documents_reminder_due
                )

            await self._wait(new_upload)

    # ================================================================== telling people
    def _announce_stage(self, spec: StageSpec) -> None:
        """Milestone messages and callbacks due when a stage starts."""
        if not self._v2 or self._plan is None or self._client is None:
            return
        now, client = workflow.now(), self._client
        if spec.stage == Stage.ACCOUNT_SETUP:
            self._notify(
                messages.provisioning_started(
                    self._ref,
                    client,
                    self._plan,
                    now,
                    self._eta(),
                    self._occurrence("account_provisioning_started"),
                )
            )
        elif spec.stage == Stage.WELCOME:
            self._notify(messages.welcome_package(self._ref, client, self._plan, now))
        wants_callback = spec.stage.value in client.contact_preferences.callback_stages
        important = client.tier.value == "premium" or self._priority in ("urgent", "critical")
        if wants_callback and important:
            wait = (
                self._plan.messaging.callback_due_after
                if self._plan.messaging
                else timedelta(hours=4)
            )
            request = CallbackRequest(
                case_ref=self._ref,
                stage=spec.stage.value,
                client_name=client.name,
                phone=client.phone,
                due_at=now + wait,
            )
            self._messages.put(
                lambda: self._side_effect(
                    NotificationActivities.schedule_callback, request, "callback"
                )
            )

    def _announce_gate_passed(self, spec: StageSpec) -> None:
        assert self._plan is not None and self._client is not None
        if spec.gate == Gate.DOCUMENTS:
            titles = {r.kind.value: r.title for r in self._plan.document_checklist}
            received = [titles.get(d.kind.value, d.kind.value) for d in self._accepted_documents]
            self._notify(
                messages.documents_received(
                    self._ref,
                    self._client,
                    received,
                    self._eta(after=spec.stage),
                    self._occurrence("documents_received"),
                )
            )
        elif spec.gate == Gate.APPROVAL and self._rejection is None:
            checks = [
                t.title
                for t in self._tasks.values()
                if t.stage == Stage.COMPLIANCE_REVIEW and t.done
            ]
            self._notify(
                messages.compliance_approved(
                    self._ref,
                    self._client,
                    checks,
                    workflow.now(),
                    self._eta(after=spec.stage),
                    self._occurrence("compliance_approved"),
                )
            )

    def _notify(self, message: NotifyInput) -> None:
        self._messages.put(
            lambda: self._side_effect(NotificationActivities.notify, message, message.milestone)
        )

    def _webhook(self, event_type: str, data: dict[str, object]) -> None:
        n = self._occurrence(f"webhook:{event_type}")
        event = WebhookEvent(
            event_id=f"{self._ref}:{event_type}:{n}",
            event_type=event_type,
            case_ref=self._ref,
            occurred_at=workflow.now(),
            data=data,
        )
        self._webhooks.put(lambda: self._side_effect(WebhookActivities.deliver, event, event_type))

    async def _side_effect(self, fn: Any, arg: Any, label: str) -> None:
        """Run one queued activity; a failure is recorded, never allowed to fail the case."""
        try:
            await workflow.execute_activity_method(
                fn,
                arg,
                start_to_close_timeout=timedelta(minutes=1),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=SIDE_EFFECT_RETRY,
            )
        except ActivityError as e:
            workflow.logger.warning("side effect %s failed: %s", label, e.cause or e)
            await self._project(
                events=[
                    self._event(
                        f"side-effect-failed-{label}-{self._occurrence('failure')}",
                        "side_effect_failed",
                        "system",
                        {"what": label, "error": str(e.cause or e)[:500]},
                    )
                ]
            )

    def _occurrence(self, key: str) -> int:
        """1, 2, 3… per key: stable outbox/event keys that replays and send-backs respect."""
        self._sent[key] = self._sent.get(key, 0) + 1
        return self._sent[key]

    def _eta(self, *, after: Stage | None = None) -> datetime:
        """Estimated completion: the rest of this stage's SLA plus every later stage's."""
        assert self._plan is not None
        now = workflow.now()
        if after is not None:
            order = [s.stage for s in self._plan.stages]
            nxt = order[min(order.index(after) + 1, len(order) - 1)]
            return messages.estimated_completion(self._plan, nxt, self._plan.spec(nxt).sla, now)
        remaining = self._clock.remaining(now) if self._clock else None
        return messages.estimated_completion(self._plan, self._stage, remaining, now)

    def _staff_notices(self, clock: SlaClock, fired: list[Milestone]) -> None:
        """Warnings to the stage owner; escalations to the owner and the escalation target."""
        if not self._v2 or self._plan is None or self._client is None:
            return
        spec = self._plan.spec(self._stage)
        now = workflow.now()
        due_at = now + (clock.remaining(now) or timedelta(0))
        kinds = {
            MilestoneKind.WARNING: "sla_warning",
            MilestoneKind.PREDICTIVE: "sla_at_risk",
            MilestoneKind.BREACH: "sla_breached",
            MilestoneKind.ESCALATION: "sla_escalated",
        }
        for m in fired:
            if m.kind == MilestoneKind.PREDICTIVE and clock.state != SlaState.AT_RISK:
                continue
            if (
                m.kind in (MilestoneKind.PREDICTIVE, MilestoneKind.WARNING)
                and self._documents_due()
            ):
                self._documents_reminder_due = True  # remind the client what is still missing
            roles = [spec.owner_role]
            extra: dict[str, object] = {}
            if m.kind == MilestoneKind.PREDICTIVE:
                done, total = self._progress(self._stage)
                extra["risk_reason"] = f"only {done} of {total} items done at 60% of the SLA"
            if m.kind == MilestoneKind.ESCALATION:
                target = m.target or spec.owner_role
                roles = [target, spec.owner_role]
                extra = {"escalated_to": target, "escalation_level": m.level}
            for role in dict.fromkeys(roles):
                self._notify(
                    messages.staff_sla_notice(
                        ref=self._ref,
                        client=self._client,
                        milestone=kinds[m.kind],
                        role=role,
                        stage=self._stage,
                        stage_started_at=self._history[-1].entered_at,
                        due_at=due_at,
                        owner=spec.owner_role,
                        now=now,
                        extra=extra,
                    )
                )

    # ================================================================== waiting
    async def _wait(self, ready: Callable[[], bool]) -> None:
        """The one place a case waits. It applies pause/resume, fires SLA milestones on a
        single durable timer per deadline, and returns when ``ready()`` holds, or at once on
        cancel or send-back."""
        while True:
            await self._apply_controls()
            await self._fire_due_milestones()
            if self._cancel is not None:
                return
            if self._paused is not None:
                self._refresh_details()
                await workflow.wait_condition(
                    lambda: bool(self._controls) or self._cancel is not None
                )
                continue
            if self._send_back is not None or ready():
                await self._sync_status()
                return
            await self._sync_status()
            deadline = self._clock.next_deadline(workflow.now()) if self._clock else None
            self._refresh_details()
            # a timeout means an SLA milestone fell due: the next turn of the loop fires it
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: (
                        bool(self._controls)
                        or self._cancel is not None
                        or self._send_back is not None
                        or ready()
                    ),
                    timeout=(deadline - workflow.now()) if deadline else None,
                )

    def _interrupted(self) -> bool:
        return self._cancel is not None or self._send_back is not None

    async def _apply_controls(self) -> None:
        """Pause and resume, in the order they arrived. Duplicates are ignored."""
        while self._controls:
            command = self._controls.popleft()
            now = workflow.now()
            if isinstance(command, PauseRequest):
                if self._paused is not None or self._status.is_closed:
                    continue
                self._paused = command
                record = PauseInterval(
                    seq=len(self._pauses) + 1,
                    stage=self._stage,
                    paused_at=now,
                    paused_by=command.actor,
                    reason=command.reason,
                )
                self._pauses.append(record)
                kind = "paused"
            else:
                if self._paused is None:
                    continue
                self._paused = None
                record = self._pauses[-1]
                record.resumed_at, record.resumed_by = now, command.actor
                record.resume_reason = command.reason
                kind = "resumed"
            await self._sync_status(
                pauses=[record],
                events=[
                    self._event(
                        f"{kind}-{record.seq}",
                        kind,
                        command.actor,
                        {"reason": command.reason, "stage": self._stage.value},
                    )
                ],
            )

    async def _sync_status(
        self,
        *,
        pauses: list[PauseInterval] | None = None,
        events: list[AuditEvent] | None = None,
    ) -> None:
        """Derive status and clock from the facts; project only when something changed."""
        if self._status.is_closed:
            return
        spec = self._plan.spec(self._stage) if self._plan else None
        waiting_on_client = (
            spec is not None and spec.gate == Gate.DOCUMENTS and self._documents is None
        )
        if self._paused is not None:
            status = CaseStatus.PAUSED
        elif waiting_on_client:
            status = CaseStatus.WAITING_ON_CLIENT
        else:
            status = CaseStatus.OPEN
        clock_runs = self._paused is None and not (
            waiting_on_client and spec is not None and spec.sla_pauses_when_waiting_on_client
        )
        if self._clock is not None:
            now = workflow.now()
            if clock_runs:
                self._clock.resume(now)
            else:
                self._clock.stop(now)
        if status == self._status and not pauses and not events:
            return
        self._status = status
        await self._project(
            case=CasePatch(
                status=status, sla_state=self._sla_state(), ever_paused=bool(self._pauses)
            ),
            pauses=pauses,
            events=events,
        )

    async def _fire_due_milestones(self) -> None:
        clock = self._clock
        if clock is None or self._paused is not None or self._status.is_closed:
            return
        due = clock.due(workflow.now())
        if not due:
            return
        events = [e for m in due if (e := self._apply_milestone(clock, m)) is not None]
        current = self._history[-1]
        current.escalations = clock.escalations
        await self._project(
            case=CasePatch(sla_state=self._sla_state(), priority=self._priority),
            intervals=[current],
            events=events,
        )
        self._staff_notices(clock, due)

    def _apply_milestone(self, clock: SlaClock, m: Milestone) -> AuditEvent | None:
        """What each SLA milestone does to the case; returns the audit event to record."""
        spec = self._plan.spec(self._stage) if self._plan else None
        owner = spec.owner_role if spec else None
        visit = self._history[-1].seq
        detail: dict[str, object] = {"stage": self._stage.value, "owner": owner}
        if m.kind == MilestoneKind.WARNING:
            if clock.state == SlaState.ON_TRACK:
                clock.state = SlaState.WARNING
            return self._event(
                f"sla-{visit}-{m.key}", "sla_warning", "sla", {**detail, "threshold": m.fraction}
            )
        if m.kind == MilestoneKind.PREDICTIVE:
            done, total = self._progress(self._stage)
            needed = spec.predictive.min_tasks_done if spec and spec.predictive else 0.0
            if total == 0 or done / total >= needed:
                return None  # keeping pace: nothing to raise
            if clock.state in (SlaState.ON_TRACK, SlaState.WARNING):
                clock.state = SlaState.AT_RISK
            clock.escalations += 1
            self._raise_priority(1)
            return self._event(
                f"sla-{visit}-at-risk",
                "sla_at_risk",
                "sla",
                {**detail, "done": done, "total": total},
            )
        if m.kind == MilestoneKind.BREACH:
            clock.state = SlaState.BREACHED
            return self._event(f"sla-{visit}-breach", "sla_breached", "sla", detail)
        clock.escalation_level = m.level
        clock.escalations += 1
        self._raise_priority(m.level)
        return self._event(
            f"sla-{visit}-{m.key}",
            "sla_escalated",
            "sla",
            {**detail, "level": m.level, "target": m.target, "priority": self._priority},
        )

    def _raise_priority(self, level: int) -> None:
        wanted = PRIORITIES[min(level, len(PRIORITIES) - 1)]
        if PRIORITIES.index(wanted) > PRIORITIES.index(self._priority):
            self._priority = wanted

    def _progress(self, stage: Stage) -> tuple[int, int]:
        """(done, total) over the stage's human work (manual tasks plus its gate), for the
        predictive alert. Automatic tasks finish at once and would only flatter the figure."""
        tasks = [
            t for t in self._tasks.values() if t.stage == stage and t.kind == TaskKind.MANUAL.value
        ]
        done = sum(t.done for t in tasks)
        total = len(tasks)
        spec = self._plan.spec(stage) if self._plan else None
        if spec is not None and spec.gate != Gate.NONE:
            total += 1
            done += self._gate_passed(spec)
        return done, total

    # ================================================================== stage bookkeeping
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
            await workflow.execute_activity_method(  # saga: undo provisioning
                AccountActivities.close_account,
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

    def _close_current_interval(self, outcome: str) -> list[StageInterval]:
        if not self._history or self._history[-1].exited_at is not None:
            return []
        now = workflow.now()
        current = self._history[-1]
        current.exited_at, current.outcome = now, outcome
        if self._clock is not None:
            current.active_seconds = self._clock.active(now).total_seconds()
            current.paused_seconds = self._clock.paused(now).total_seconds()
            current.sla_outcome = self._clock.outcome()
            current.escalations = self._clock.escalations
        return [current]

    async def _mark_task_done(self, key: str, *, actor: str, note: str | None = None) -> None:
        task = self._tasks[key]
        task.done, task.done_by, task.done_at = True, actor, workflow.now()
        await self._project(
            tasks=[task],
            events=[
                self._event(
                    f"task-{key}-{len(self._history)}",
                    "task_completed",
                    actor,
                    {"task": key, "stage": task.stage.value, "note": note},
                )
            ],
        )

    # ================================================================== messages
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
        self._require_open("a send-back")
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
        self._require_open("a cancellation")
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

    # ================================================================== plumbing
    def _approvals_needed(self) -> int:
        """High-risk and enterprise cases need two independent approvals."""
        return 2 if set(self._flags()) & DUAL_APPROVAL_FLAGS else 1

    def _flags(self) -> list[str]:
        """The plan's flags plus what screening found at run time."""
        flags = list(self._plan.flags) if self._plan else []
        found: list[str] = []
        if self._screening is not None and self._screening.risk_level == RiskLevel.HIGH:
            found += ["high_risk", "enhanced_due_diligence"]
        if self._screening is not None and self._screening.decision == "potential_match":
            found.append("potential_sanctions_match")
        return flags + [f for f in found if f not in flags]

    def _add_task(self, key: str, title: str) -> None:
        """A task the case discovered it needs at run time (e.g. reviewing a screening hit)."""
        if key not in self._tasks:
            self._tasks[key] = TaskState(
                key=key,
                title=title,
                stage=self._stage,
                kind=TaskKind.MANUAL.value,
                assignee_role="compliance_reviewer",
            )

    def _open_manual_tasks(self, stage: Stage) -> list[str]:
        return [
            t.key
            for t in self._tasks.values()
            if t.stage == stage and t.kind == TaskKind.MANUAL.value and not t.done
        ]

    def _require_open(self, what: str) -> None:
        if self._status.is_closed or self._cancel is not None:
            raise WrongState(f"case {self._ref} is {self._status.value}; it takes no {what}")

    def _require_active(self, stage: Stage, what: str) -> None:
        """Open, not paused, at ``stage``: the precondition of every human step."""
        self._require_open(what)
        if self._paused is not None:
            raise WrongState(
                f"case {self._ref} is paused by {self._paused.actor}; resume it before {what}"
            )
        if self._stage != stage or self._send_back is not None:
            raise WrongState(
                f"case {self._ref} is at {self._stage.value}, not {stage.value}; "
                f"it cannot take {what} now"
            )

    def _accepted(self, message: str) -> CommandAccepted:
        return CommandAccepted(
            case_ref=self._ref, stage=self._stage, status=self._status.value, message=message
        )

    def _sla_state(self) -> SlaState | None:
        if self._paused is not None:
            return SlaState.PAUSED
        return self._clock.state if self._clock and self._clock.budget else None

    def _awaiting(self) -> str | None:
        if self._status.is_closed or self._plan is None:
            return None
        if self._paused is not None:
            return f"resume (paused by {self._paused.actor}: {self._paused.reason})"
        spec = self._plan.spec(self._stage)
        if spec.gate == Gate.DOCUMENTS and self._documents is None:
            return "client documents"
        open_tasks = [
            t.title
            for t in self._tasks.values()
            if t.stage == self._stage and t.kind == TaskKind.MANUAL.value and not t.done
        ]
        if open_tasks:
            return "tasks: " + ", ".join(open_tasks)
        if spec.gate == Gate.APPROVAL and not self._gate_passed(spec):
            needed = self._approvals_needed()
            return f"compliance decision ({len(self._approvals)} of {needed} approvals)"
        if spec.gate == Gate.SIGN_OFF and self._sign_off is None:
            return "final review sign-off"
        return "automation"

    def _event(
        self, key: str, kind: str, actor: str, detail: dict[str, object] | None = None
    ) -> AuditEvent:
        return AuditEvent(key=key, kind=kind, actor=actor, detail=detail or {})

    async def _project(
        self,
        *,
        seed: CaseSeed | None = None,
        case: CasePatch | None = None,
        intervals: list[StageInterval] | None = None,
        pauses: list[PauseInterval] | None = None,
        tasks: list[TaskState] | None = None,
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
                pauses=pauses or [],
                tasks=tasks or [],
                events=events or [],
            ),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
        )
        self._publish_search_attributes()
        self._refresh_details()

    def _publish_search_attributes(self) -> None:
        """Upsert only what changed: every upsert is a history event (and a billable action)."""
        sla_state = self._sla_state()
        wanted = {
            sa.CASE_STAGE: self._stage.value,
            sa.CASE_STATUS: self._status.value,
            sa.SLA_STATE: sla_state.value if sla_state else SlaState.ON_TRACK.value,
        }
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
        lines = [
            f"**Case** {self._ref}",
            f"**Stage** {self._stage.value}",
            f"**Status** {self._status.value} · priority {self._priority}",
        ]
        clock = self._clock
        if clock is not None and clock.budget is not None:
            remaining = clock.remaining(workflow.now()) or timedelta(0)
            sign = "-" if remaining < timedelta(0) else ""
            minutes = int(abs(remaining).total_seconds() // 60)
            lines.append(
                f"**SLA** {(self._sla_state() or SlaState.ON_TRACK).value}, "
                f"{sign}{minutes // 60}h{minutes % 60:02d}m left"
                + ("" if clock.running else " (clock stopped)")
            )
        lines.append(f"**Waiting for** {self._awaiting() or '-'}")
        workflow.set_current_details("  \n".join(lines))


__all__ = ["OnboardingCaseWorkflow", "WrongState"]
