"""State and plumbing shared by every part of the case workflow.

Holds what a case knows (plan, stage history, tasks, approvals, pauses, SLA clock), writes
the read model (one idempotent local activity per transition), keeps the operators' view
(search attributes, current details) and answers the questions the rest of the workflow
asks (which gate has passed, what are we waiting for). No business steps live here.
"""

from __future__ import annotations

from collections import deque
from datetime import timedelta
from enum import StrEnum

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.case import (
        Approval,
        PauseInterval,
        StageInterval,
        TaskState,
    )
    from schemas.client import ClientProfile
    from schemas.commands import (
        CancelCase,
        CommandAccepted,
        ComplianceDecision,
        DocumentsReceived,
        FinalSignOff,
        PauseRequest,
        ResumeRequest,
        SendBack,
    )
    from schemas.compliance import RiskLevel, ScreeningOutcome
    from schemas.documents import DocumentRef
    from schemas.enums import CaseStatus, SlaState, Stage
    from schemas.plan import CasePlan, Gate, StageSpec, TaskKind
    from schemas.projection import (
        AuditEvent,
        CasePatch,
        CaseSeed,
        Projection,
    )
    from workflows import search_attributes as sa
    from workflows.lanes import Lane
    from workflows.sla import SlaClock

# Postgres blips must never fail a case: keep retrying, back off to a minute.
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
STORE_TIMEOUT = timedelta(seconds=30)
# Activities mark business rejections non-retryable themselves (ApplicationError with a type).
EXTERNAL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5)
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


class CaseBase:
    """State of one case plus the plumbing every mixin uses."""

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

    def _interrupted(self) -> bool:
        return self._cancel is not None or self._send_back is not None

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

    def _occurrence(self, key: str) -> int:
        """1, 2, 3… per key: stable outbox/event keys that replays and send-backs respect."""
        self._sent[key] = self._sent.get(key, 0) + 1
        return self._sent[key]

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

    def _require_not_closed(self, what: str) -> None:
        if self._status.is_closed or self._cancel is not None:
            raise WrongState(f"case {self._ref} is {self._status.value}; it takes no {what}")

    def _require_active(self, stage: Stage, what: str) -> None:
        """Open, not paused, at ``stage``: the precondition of every human step."""
        self._require_not_closed(what)
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
        await workflow.execute_local_activity(
            "project_case",
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

    def _documents_due(self) -> bool:
        """The case is collecting checklist documents and still lacks some."""
        return (
            self._stage == Stage.DOCUMENT_COLLECTION
            and self._verifies_documents()
            and self._documents is None
        )

    def _verifies_documents(self) -> bool:
        return self._v2 and self._plan is not None and bool(self._plan.document_checklist)
