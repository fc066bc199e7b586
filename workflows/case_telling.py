"""Telling people: milestone messages to the client, internal SLA notices, callbacks and
webhooks. Each goes on an ordered background lane so a slow provider never holds up a case."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from schemas.enums import SlaState, Stage
    from schemas.notifications import CallbackRequest, NotifyInput
    from schemas.plan import Gate, StageSpec
    from schemas.webhooks import WebhookEvent
    from workflows import messages
    from workflows.sla import Milestone, MilestoneKind, SlaClock


from workflows.case_base import (
    SIDE_EFFECT_RETRY,
    CaseBase,
)


class TellingMixin(CaseBase):
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
            self._messages.put(lambda: self._side_effect("schedule_callback", request, "callback"))

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
        self._messages.put(lambda: self._side_effect("notify", message, message.milestone))

    def _webhook(self, event_type: str, data: dict[str, object]) -> None:
        n = self._occurrence(f"webhook:{event_type}")
        event = WebhookEvent(
            event_id=f"{self._ref}:{event_type}:{n}",
            event_type=event_type,
            case_ref=self._ref,
            occurred_at=workflow.now(),
            data=data,
        )
        self._webhooks.put(lambda: self._side_effect("deliver_webhook", event, event_type))

    async def _side_effect(self, activity: str, arg: Any, label: str) -> None:
        """Run one queued activity; a failure is recorded, never allowed to fail the case."""
        try:
            await workflow.execute_activity(
                activity,
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
