"""Waiting: the one place a case waits, racing the SLA clock against people.

Applies pause/resume, fires SLA milestones (warning, at risk, breach, escalations) on one
durable timer per deadline, and keeps status and the clock in step."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case import (
        PauseInterval,
    )
    from schemas.commands import (
        PauseRequest,
    )
    from schemas.enums import CaseStatus, SlaState
    from schemas.plan import Gate
    from schemas.projection import (
        AuditEvent,
        CasePatch,
    )
    from workflows.sla import Milestone, MilestoneKind, SlaClock


from workflows.case_base import (
    PRIORITIES,
)
from workflows.case_telling import TellingMixin


class WaitingMixin(TellingMixin):
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
