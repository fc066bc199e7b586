"""``CaseRuntime``: what elements and the workflow share for one case.

It owns the case's ``CaseState`` and the pinned case type, and does the plumbing every part
needs: the one place a case waits (racing the SLA clock and element timers against people),
SLA milestones, status, and ``flush`` — the single write per blocking point: the read-model
projection (riding on the outbox's activity when one goes anyway), search attributes and the
Temporal UI summary. No business step lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.workflow import ActivityCancellationType

from schemas.calendar import PinnedCalendar
from schemas.case_state import CaseState, ElementState, ElementStatus, EngineStatus, EtaNow
from schemas.casetype import CaseType, StageDef
from schemas.client import ClientProfile
from schemas.conditions import holds
from schemas.contracts import PROJECT_CASE, CaseCarry, EngineCaseInput, EngineSeed, ProjectResult
from schemas.eta import (
    ESTIMATE_ETA,
    PREDICT_BREACH,
    BreachRisk,
    EstimateEtaInput,
    EtaEstimate,
    EtaFacts,
    PredictBreachInput,
    StageBudget,
)
from schemas.notifications import NotifyInput
from schemas.projection import AuditEvent
from schemas.webhooks import WebhookEvent
from schemas.work import PERSON
from workflows import search_attributes as sa
from workflows.engine import clock, messages
from workflows.engine.outbox import Outbox
from workflows.engine.projector import Projector
from workflows.sla import Milestone, MilestoneKind

STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
PRIORITIES = ("normal", "high", "urgent", "critical")
SLA_RANK = {"on_track": 0, "at_risk": 1, "warning": 2, "breached": 3}
ETA_ESTIMATE = "eta-estimate"
"""Patch: the case asks the ``estimate_eta`` activity when it will be done (at open and at
each stage), instead of only summing SLA budgets."""
HOLDER_SLA_NOTICES = "holder-sla-notices"
"""Patch: SLA warnings, at-risk alerts and breaches also go to the person holding the case."""
BREACH_MODEL = "breach-model"
"""Patch: the predictive check also asks the breach model where the stage sets a
``breach_probability``."""
ETA_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1))
SLA_DUE_COLUMN = "sla-due-at-column"
"""Patch: the read model's case row carries when the stage's SLA runs out (for work queues)."""
CONTINUE_AS_NEW = "continue-as-new"
"""Patch: a case whose history grows past its limit continues as new at a quiet point,
carrying its whole state (``CaseCarry``)."""
DECISION_FIELDS = "decision-fields"
"""Patch: a finished approval or task with an outcome is written to
``fields["decisions"][key]``, so later conditions can route on a person's decision."""
ETA_WHILE_WAITING = "eta-while-waiting"
"""Patch: a stage's ETA is asked while the case waits at its entry (SLA timers armed, the
entry written), not before it: behind a busy activity queue the estimate can take minutes,
and the SLA's warnings and escalations must not wait for it."""
ETA_ABANDON = "eta-abandon"
"""Patch: a stage's ETA question dropped by a send-back or cancel is abandoned, not cancelled
on the server. A cancel request racing the activity's own completion made the time-skipping
server reject the workflow task (``ACTIVITY_UNKNOWN``) while holding the update that caused
it, so the command never returned; the answer is not wanted either way."""
HUMAN_STEPS = "human_steps"
"""``state.counters`` key: commands a member of staff gave on a step (a decision, a task, a
tick, a waiver, a skip, a send-back), so a straight-through rule can ask that nobody has had
to act yet. The client's own answers are not counted."""
HUMAN_KINDS = frozenset({"task", "approval", "checklist", "documents", "client_acceptance"})


class CaseRuntime:
    def __init__(self, inp: EngineCaseInput) -> None:
        self.input = inp
        self.case_type: CaseType = inp.case_type
        self.client: ClientProfile = inp.client
        self.state = CaseState(
            case_ref=inp.case_ref,
            case_type=inp.case_type.name,
            case_type_version=inp.case_type.version,
            workflow_id=inp.workflow_id,
            stage=inp.case_type.stages[0].key,
            parent_workflow_id=inp.parent_workflow_id,
            fields=initial_fields(inp),
        )
        self.projector = Projector(self.state)
        self.outbox = Outbox(self.state.case_ref)
        self.changes = 0  # bumped by every accepted command: wakes the waiting loop
        self.cancel_requested: tuple[str, str, str | None] | None = None  # actor, code, reason
        self.jump: tuple[str, str, str, str] | None = None  # to_stage, outcome, actor, reason
        self.risk_check: tuple[str, float] | None = None  # (stage, share): ask the breach model
        self.estimating: asyncio.Task[None] | None = None  # the stage's ETA, asked while waiting
        self._published: dict[str, str] = {}
        self._seeded = inp.row_exists  # else the first projection carries the row's seed
        self.outbox.held = not inp.row_exists
        if inp.carried is not None:  # a continued run: the case exactly as it was left
            self.state = inp.carried.state
            self.projector = Projector(self.state)
            if inp.carried.written is not None:
                self.projector.restore(inp.carried.written)
            self._published = dict(inp.carried.published)
            self._seeded, self.outbox.held = True, False

    # ------------------------------------------------------------------ lookups
    @property
    def stage_def(self) -> StageDef:
        return self.case_type.stage(self.state.stage)

    @property
    def calendar(self) -> PinnedCalendar | None:
        """The business calendar the current stage's SLA counts in (None: 24/7)."""
        name = self.stage_def.calendar or self.case_type.calendar
        return self.input.calendars.get(name) if name else None

    def element_def(self, key: str) -> Any:
        for element in self.stage_def.elements:
            if element.key == key:
                return element
        raise KeyError(key)

    def active_elements(self) -> list[ElementState]:
        return [e for e in self.state.elements if e.status == ElementStatus.ACTIVE]

    def now(self) -> datetime:
        return workflow.now()

    def facts(self) -> dict[str, Any]:
        """What ``auto_complete`` rules read: the fields, plus ``case.*`` facts of the run."""
        return {
            **self.state.fields,
            "case": {
                "human_steps": self.state.counters.get(HUMAN_STEPS, 0),
                "ever_paused": bool(self.state.pauses),
                "reopened": self.state.reopened,
            },
        }

    def interrupted(self) -> bool:
        return self.cancel_requested is not None or self.jump is not None

    def staff_acted(self) -> None:
        """A member of staff did a step of the case (see ``HUMAN_STEPS``)."""
        self.state.counters[HUMAN_STEPS] = self.state.counters.get(HUMAN_STEPS, 0) + 1

    def touch(self) -> None:
        """A command changed the case: the waiting loop re-evaluates."""
        self.changes += 1

    # ------------------------------------------------------------------ ETA
    def route(self) -> list[StageBudget]:
        """The stages still ahead (this one included), as routing stands now, with budgets."""
        keys = [s.key for s in self.case_type.stages]
        start = keys.index(self.state.stage) if self.state.stage in keys else 0
        return [
            StageBudget(stage=s.key, sla_hours=s.sla.total_seconds() / 3600 if s.sla else None)
            for s in self.case_type.stages[start:]
            if holds(s.when, self.state.fields) or s.key == self.state.stage
        ]

    async def estimate_at_entry(self) -> None:
        """The stage's ETA, before its elements tell the client anything. Asked while the case
        waits (patch ``eta-while-waiting``), so the SLA clock's timers run meanwhile; a send-back
        or cancel meanwhile drops the question (the next stage asks its own)."""
        if not workflow.patched(ETA_WHILE_WAITING):
            await self.estimate()
            return
        abandon = workflow.patched(ETA_ABANDON)
        task = asyncio.create_task(self.estimate(abandon=abandon))
        task.add_done_callback(lambda _: self.touch())
        self.estimating = task
        try:
            await self.wait_until(task.done)
        finally:
            self.estimating = None
            if not task.done():
                task.cancel()

    async def estimate(self, *, abandon: bool = False) -> None:
        """Ask history when the case will be done (an activity: the model never runs in
        workflow code). The answer is the p50 completion time from creation; once the case
        is behind that, what is left of the route's budgets from now. An activity that
        fails leaves the previous estimate (or the budgets) in place: never a stuck case.
        ``abandon``: a cancel of the question only drops the answer (patch ``eta-abandon``)."""
        if not workflow.patched(ETA_ESTIMATE):
            return
        now = self.now()
        facts = self.eta_facts()
        try:
            got = await workflow.execute_activity(
                ESTIMATE_ETA,
                EstimateEtaInput(
                    case_ref=self.state.case_ref,
                    case_type=self.case_type.name,
                    facts=facts,
                    route=self.route(),
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=ETA_RETRY,
                result_type=EtaEstimate,
                cancellation_type=(
                    ActivityCancellationType.ABANDON
                    if abandon
                    else ActivityCancellationType.TRY_CANCEL
                ),
            )
        except ActivityError as failed:
            workflow.logger.warning(
                "ETA estimate failed (%s); keeping the previous one", failed.cause or failed
            )
            return
        budgets_at = now + self._budgets_left()
        if got.basis == "model" and got.p50 >= now:
            p10, p50, p90, basis = max(got.p10, now), got.p50, max(got.p90, got.p50), "model"
        else:  # no model for this type, or the case is behind it: what is left of the budgets
            shift = budgets_at - got.p50
            p10, p50, p90 = max(got.p10 + shift, now), budgets_at, got.p90 + shift
            basis = "budgets"
        self.state.eta = EtaNow(
            p50=p50,
            p10=p10,
            p90=p90,
            basis=basis,
            model_version=got.model_version if basis == "model" else None,
            estimated_at=now,
        )
        eta = self.state.eta
        self.projector.case(
            eta_at=eta.p50, eta_p10_at=eta.p10, eta_p90_at=eta.p90, eta_basis=eta.basis
        )

    def eta_facts(self) -> EtaFacts:
        """What was known of the case when it opened (what the models learned from)."""
        client = self.client
        opened = self.state.history[0].entered_at if self.state.history else self.now()
        return EtaFacts(
            client_type=client.client_type.value,
            tier=client.tier.value,
            country=client.country,
            service_requirements=list(client.regulatory_requirements),
            documents_submitted_at_creation=bool(self.input.data.get("documents_submitted")),
            created_at=opened,
        )

    def _budgets_left(self) -> timedelta:
        """What is left of this stage's SLA plus the budgets of the stages still on its route
        (as routing stands now: a stage whose condition does not hold is not counted)."""
        sla = self.state.sla
        left = clock.remaining(sla, self.now(), self.calendar) if sla is not None else None
        later = sum(b.sla_hours or 0.0 for b in self.route()[1:])
        return max(left or timedelta(0), timedelta(0)) + timedelta(hours=later)

    def eta_at(self, remaining: timedelta | None, now: datetime) -> datetime:
        """For client messages: the estimate, or (none yet) the sum of the budgets left."""
        eta = self.state.eta
        if eta is not None and eta.p50 >= now:
            return eta.p50
        return messages.eta(self.case_type, self.state, remaining, now)

    # ------------------------------------------------------------------ audit + messages
    def event(self, kind: str, actor: str, detail: dict[str, Any] | None = None) -> None:
        n = self.state.next_number(f"event:{kind}")
        self.projector.event(
            AuditEvent(
                key=f"{kind}-{n}", kind=kind, actor=actor, detail=detail or {}, at=self.now()
            )
        )

    def tell_client(
        self, milestone: str, *, extra: dict[str, Any] | None = None, urgent: bool = False
    ) -> None:
        now = self.now()
        remaining = clock.remaining(self.state.sla, now, self.calendar) if self.state.sla else None
        self.outbox.message(
            messages.client_message(
                milestone=milestone,
                case_type=self.case_type,
                state=self.state,
                client=self.client,
                stage=self.stage_def,
                now=now,
                eta_at=self.eta_at(remaining, now),
                extra=extra,
                urgent=urgent,
            )
        )

    def tell_staff(self, milestone: str, roles: list[str], extra: dict[str, Any]) -> None:
        for role in dict.fromkeys(roles):
            self.outbox.message(
                messages.staff_notice(
                    milestone=milestone,
                    role=role,
                    state=self.state,
                    client=self.client,
                    stage=self.stage_def,
                    now=self.now(),
                    extra=extra,
                )
            )

    def tell_holder(self, milestone: str, extra: dict[str, Any]) -> None:
        """The SLA notice to whoever holds the case too (they are the one who can act), not
        only to the stage's owner role."""
        holder = self.state.assignee
        if holder is None or not workflow.patched(HOLDER_SLA_NOTICES):
            return
        self.outbox.message(
            messages.staff_notice(
                milestone=milestone,
                role=f"{PERSON}{holder}",
                state=self.state,
                client=self.client,
                stage=self.stage_def,
                now=self.now(),
                extra={**extra, "team": self.state.assignee_team},
            )
        )

    def tell_person(
        self, milestone: str, person: str, team: str | None, extra: dict[str, Any]
    ) -> None:
        """A staff notice to one person (``team`` is their role: the address when they have
        none of their own)."""
        self.outbox.message(
            messages.person_notice(
                milestone=milestone, person=person, team=team, state=self.state, extra=extra
            )
        )

    def send(self, message: NotifyInput) -> None:
        self.outbox.message(message)

    def webhook(self, event_type: str, data: dict[str, Any]) -> None:
        if event_type not in self.case_type.webhooks:
            return
        n = self.state.next_number(f"webhook:{event_type}")
        self.outbox.webhook(
            WebhookEvent(
                event_id=f"{self.state.case_ref}:{event_type}:{n}",
                event_type=event_type,
                case_ref=self.state.case_ref,
                occurred_at=self.now(),
                data=data,
            )
        )

    # ------------------------------------------------------------------ waiting
    async def wait_until(
        self,
        ready: Callable[[], bool],
        *,
        timers: Callable[[], list[datetime]] | None = None,
        on_timer: Callable[[datetime], None] | None = None,
    ) -> None:
        """The one place a case waits. Returns when ``ready()`` holds (and the case is not
        paused), or at once on cancel or a jump (send-back/reopen). SLA milestones and the
        element's own timers (reminders, due times) fire on one durable timer per deadline."""
        while True:
            now = self.now()
            self.fire_sla(now)
            if self.risk_check is not None:
                await self.check_breach_model()
            paused = self.state.status == EngineStatus.PAUSED
            if on_timer is not None and not paused:  # no reminders while a person holds it
                on_timer(now)
            if self.interrupted():
                return
            if self.state.status != EngineStatus.PAUSED and ready():
                return
            await self.flush()
            deadlines = [d for d in (timers() if timers and not paused else []) if d > now]
            if self.state.status != EngineStatus.PAUSED and self.state.sla is not None:
                sla_next = clock.next_deadline(self.state.sla, self.stage_def, now, self.calendar)
                if sla_next is not None:
                    deadlines.append(sla_next)
            timeout = (min(deadlines) - now) if deadlines else None
            seen = self.changes
            rolling = self.history_too_long()
            if rolling and self.quiet():
                # Let every handler already delivered in this task run first: a command
                # accepted after the carry was taken would be lost with the old run.
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self.changes == seen and self.quiet():
                    workflow.continue_as_new(self.carry())
                continue  # a command came in: look at the case again first

            def woken(seen: int = seen, rolling: bool = rolling) -> bool:
                return self.changes != seen or self.interrupted() or (rolling and self.quiet())

            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    woken,
                    timeout=max(timeout, timedelta(seconds=1)) if timeout is not None else None,
                )

    def record_decision(
        self, key: str, outcome: str, by: str, note: str | None, reason_code: str | None = None
    ) -> None:
        """What a person decided, where ``when`` conditions and automation inputs read it
        (``decisions.<element>.outcome``, ``.note``, ``.by``, ``.reason_code``)."""
        if not workflow.patched(DECISION_FIELDS):
            return
        decisions = self.state.fields.setdefault("decisions", {})
        decisions[key] = {"outcome": outcome, "by": by, "note": note, "reason_code": reason_code}

    # ------------------------------------------------------------------ continue-as-new
    def history_too_long(self) -> bool:
        """Past the case's event limit (or the server suggests it): time to roll over. Old
        histories never took this path, so the patch is asked only once it would."""
        info = workflow.info()
        long = (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self.input.continue_as_new_after_events
        )
        return long and workflow.patched(CONTINUE_AS_NEW)

    def quiet(self) -> bool:
        """Nothing in flight that a new run could not pick up from the state alone: no child
        case running (its parent-close policy would cancel it), every message and projection
        written, every handler done, no model check pending."""
        child_running = any(
            e.kind == "subprocess" and e.status == ElementStatus.ACTIVE for e in self.state.elements
        )
        return (
            not child_running
            and self.outbox.idle
            and not self.projector.pending()
            and self.risk_check is None
            and self.estimating is None
            and not self.interrupted()
            and workflow.all_handlers_finished()
        )

    def carry(self) -> EngineCaseInput:
        """The next run's input: the same pinned input plus the case as it stands."""
        runs = self.input.carried.runs + 1 if self.input.carried is not None else 1
        workflow.logger.info(
            "case %s continues as new after %d events (run %d)",
            self.state.case_ref,
            workflow.info().get_current_history_length(),
            runs + 1,
        )
        return self.input.model_copy(
            update={
                "carried": CaseCarry(
                    state=self.state,
                    published=dict(self._published),
                    written=self.projector.written(),
                    runs=runs,
                )
            }
        )

    # ------------------------------------------------------------------ SLA
    def fire_sla(self, now: datetime) -> None:
        sla = self.state.sla
        if sla is None or self.state.status in (EngineStatus.PAUSED, EngineStatus.RESOLVED):
            return
        fired = clock.due(sla, self.stage_def, now, self.calendar)
        for milestone in fired:
            self._apply_sla(milestone, now)
        if fired:
            self.state.history[-1].escalations = sla.escalations

    def _apply_sla(self, m: Milestone, now: datetime) -> None:
        sla = self.state.sla
        assert sla is not None
        stage = self.stage_def
        remaining = clock.remaining(sla, now, self.calendar) or timedelta(0)
        due_at = clock.due_at(sla, now, self.calendar) or now + remaining
        base = {
            "stage": stage.title,
            "stage_started_at": self.state.history[-1].entered_at,
            "sla_due_at": due_at,
            "assignee": stage.owner_role,
        }
        if m.kind == MilestoneKind.WARNING:
            self._raise_sla_state("warning")
            self.event("sla_warning", "sla", {"stage": stage.key, "threshold": m.fraction})
            self.tell_staff(
                "sla_warning", [stage.owner_role], {**base, "time_remaining": remaining}
            )
            self.tell_holder("sla_warning", {**base, "time_remaining": remaining})
        elif m.kind == MilestoneKind.PREDICTIVE:
            done, total = self.progress()
            needed = stage.predictive.min_tasks_done if stage.predictive else 0.0
            if total == 0 or done / total >= needed:
                model_says = stage.predictive.breach_probability if stage.predictive else None
                if model_says is not None and workflow.patched(BREACH_MODEL):
                    self.risk_check = (stage.key, m.fraction or 0.0)  # asked in wait_until
                return
            reason = f"{done} of {total} steps done at {int((m.fraction or 0) * 100)}% of the SLA"
            self._at_risk(reason, {"done": done, "total": total})
        elif m.kind == MilestoneKind.BREACH:
            self._raise_sla_state("breached")
            self.event("sla_breached", "sla", {"stage": stage.key, "owner": stage.owner_role})
            breached = {**base, "overdue_by": max(-remaining, timedelta(seconds=1))}
            self.tell_staff("sla_breached", [stage.owner_role], breached)
            self.tell_holder("sla_breached", breached)
        elif sla.acknowledged_level and stage.escalations_stop_when_acknowledged:
            # someone owns it: the later levels are recorded, not sent (per the case type)
            self.event(
                "sla_escalation_held",
                "sla",
                {"stage": stage.key, "level": m.level, "acknowledged_by": sla.acknowledged_by},
            )
        else:
            sla.escalation_level = m.level
            sla.escalations += 1
            self._raise_priority(m.level)
            target = m.target or stage.owner_role
            self.event(
                "sla_escalated",
                "sla",
                {"stage": stage.key, "level": m.level, "target": target},
            )
            self.tell_staff(
                "sla_escalated",
                [target, stage.owner_role],
                {
                    **base,
                    "overdue_by": max(-remaining, timedelta(seconds=1)),
                    "escalated_to": target,
                    "escalation_level": min(m.level, 5),
                },
            )

    def _at_risk(self, reason: str, detail: dict[str, Any]) -> None:
        """The stage is likely to breach: at-risk, priority up, the owners told why."""
        sla, stage, now = self.state.sla, self.stage_def, self.now()
        assert sla is not None
        remaining = clock.remaining(sla, now, self.calendar) or timedelta(0)
        self._raise_sla_state("at_risk")
        sla.escalations += 1
        self._raise_priority(1)
        self.event("sla_at_risk", "sla", {"stage": stage.key, **detail})
        notice = {
            "stage": stage.title,
            "stage_started_at": self.state.history[-1].entered_at,
            "sla_due_at": clock.due_at(sla, now, self.calendar) or now + remaining,
            "assignee": stage.owner_role,
            "time_remaining": max(remaining, timedelta(0)),
            "risk_reason": reason,
        }
        self.tell_staff("sla_at_risk", [stage.owner_role], notice)
        self.tell_holder("sla_at_risk", notice)

    async def check_breach_model(self) -> None:
        """The predictive check found the rule quiet: ask the breach model (an activity)."""
        pending, self.risk_check = self.risk_check, None
        sla, stage = self.state.sla, self.stage_def
        if pending is None or sla is None or pending[0] != stage.key or sla.budget_seconds is None:
            return
        threshold = stage.predictive.breach_probability if stage.predictive else None
        if threshold is None:
            return
        done, total = self.progress()
        visit = self.state.history[-1]
        try:
            risk = await workflow.execute_activity(
                PREDICT_BREACH,
                PredictBreachInput(
                    case_ref=self.state.case_ref,
                    case_type=self.case_type.name,
                    facts=self.eta_facts(),
                    stage=stage.key,
                    entered_at=visit.entered_at,
                    at=self.now(),
                    budget_hours=sla.budget_seconds / 3600,
                    visit=sum(v.stage == stage.key for v in self.state.history),
                    tasks_done_share=done / total if total else None,
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=ETA_RETRY,
                result_type=BreachRisk,
            )
        except ActivityError:
            workflow.logger.warning("breach prediction failed; the rule alone decides")
            return
        if risk.probability is None or risk.probability < threshold:
            return
        if self.state.sla is not sla or sla.state == "at_risk":
            return  # the stage moved on (or is already at risk) while we asked
        self._at_risk(
            f"the breach model gives {risk.probability:.0%} (threshold {threshold:.0%}) "
            f"at {int(pending[1] * 100)}% of the SLA",
            {"probability": round(risk.probability, 3), "model": risk.model_version},
        )

    def _raise_sla_state(self, wanted: str) -> None:
        sla = self.state.sla
        if sla is not None and SLA_RANK[wanted] > SLA_RANK.get(sla.state, 0):
            sla.state = wanted

    def _raise_priority(self, level: int) -> None:
        wanted = PRIORITIES[min(level, len(PRIORITIES) - 1)]
        if PRIORITIES.index(wanted) > PRIORITIES.index(self.state.priority):
            self.state.priority = wanted

    def progress(self) -> tuple[int, int]:
        """(done, total) over the stage's human elements, for the predictive alert."""
        human = [
            e
            for e in self.state.elements
            if e.kind in HUMAN_KINDS
            and e.status != ElementStatus.NOT_APPLICABLE
            and self._will_run(e)
        ]
        return sum(e.finished for e in human), len(human)

    def _will_run(self, element: ElementState) -> bool:
        """A step not reached yet counts only if its condition holds as things stand."""
        if element.status != ElementStatus.PENDING:
            return True
        return holds(self.element_def(element.key).when, self.state.fields)

    def recheck_risk(self) -> None:
        """An at-risk alert clears (and its priority bump with it) once work catches up."""
        sla, stage = self.state.sla, self.stage_def
        if sla is None or sla.state != "at_risk" or stage.predictive is None:
            return
        done, total = self.progress()
        if total and done / total >= stage.predictive.min_tasks_done:
            sla.state = "on_track"
            if sla.escalation_level == 0:
                self.state.priority = "normal"
            self.event("sla_risk_cleared", "sla", {"stage": stage.key})

    def sla_state(self) -> str:
        if self.state.status == EngineStatus.PAUSED:
            return "paused"
        if self.state.sla is None or self.state.sla.budget_seconds is None:
            return "on_track"
        return self.state.sla.state

    # ------------------------------------------------------------------ status
    def derive_status(self) -> None:
        """Open / waiting on the client, and whether the SLA clock runs; projected on change."""
        state = self.state
        if state.status not in (EngineStatus.OPEN, EngineStatus.WAITING_ON_CLIENT):
            return
        on_client = any(
            e.kind in ("documents", "client_acceptance") for e in self.active_elements()
        )
        status = EngineStatus.WAITING_ON_CLIENT if on_client else EngineStatus.OPEN
        if state.sla is not None:
            stops = on_client and self.stage_def.sla_pauses_when_waiting_on_client
            if stops:
                clock.stop(state.sla, self.now(), self.calendar)
            else:
                clock.resume(state.sla, self.now())
        if status != state.status:
            state.status = status
            self.projector.case(status=status.value)

    # ------------------------------------------------------------------ flush
    async def flush(self) -> None:
        """Before the case blocks: one read-model write, search attributes, UI details."""
        self.derive_status()
        self.projector.case(
            status=self.state.status.value,
            stage=self.state.stage,
            sla_state=self.sla_state(),
            priority=self.state.priority,
        )
        if workflow.patched(SLA_DUE_COLUMN):
            sla = self.state.sla
            self.projector.case(sla_due_at=clock.breach_at(sla, self.calendar) if sla else None)
        projection = self.projector.take(self.now(), seed=self._seed())
        if projection is not None:
            self._seeded = True
            if not self.outbox.carry(projection):
                result = await workflow.execute_local_activity(
                    PROJECT_CASE,
                    projection,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=STORE_RETRY,
                    result_type=ProjectResult,
                )
                if result.dead_lettered:
                    workflow.logger.error(
                        "read-model projection %s dead-lettered", projection.version
                    )
        self.outbox.held = False
        self.publish_search_attributes()
        self.refresh_details()

    def _seed(self) -> EngineSeed | None:
        if self._seeded:
            return None
        first = self.case_type.stages[0]
        return EngineSeed(
            client=self.client,
            case_type=self.case_type.name,
            case_type_version=self.case_type.version,
            workflow_id=self.state.workflow_id,
            requested_by=self.input.requested_by,
            data=self.input.data,
            first_stage=first.key,
            access_roles=list(first.access),
        )

    def publish_search_attributes(self) -> None:
        """Upsert together, only what changed: every upsert is a billable history event."""
        wanted = {
            sa.CASE_STAGE: self.state.stage,
            sa.CASE_STATUS: self.state.status.value,
            sa.SLA_STATE: self.sla_state(),
        }
        if not self._published:  # the API set these at start; a child starts with them too
            self._published = {
                sa.CASE_STAGE.name: self.case_type.stages[0].key,
                sa.CASE_STATUS.name: EngineStatus.OPEN.value,
                sa.SLA_STATE.name: "on_track",
            }
        changed = [
            key.value_set(value)
            for key, value in wanted.items()
            if self._published.get(key.name) != value
        ]
        if changed:
            workflow.upsert_search_attributes(changed)
            self._published.update({k.name: v for k, v in wanted.items()})

    def refresh_details(self) -> None:
        """What an operator sees on the workflow page in the Temporal UI."""
        state = self.state
        lines = [
            f"**Case** {state.case_ref} ({self.case_type.title})",
            f"**Stage** {self.stage_def.title}",
            f"**Status** {state.status.value} · priority {state.priority}",
        ]
        if state.sla is not None and state.sla.budget_seconds is not None:
            left = clock.remaining(state.sla, self.now(), self.calendar) or timedelta(0)
            sign = "-" if left < timedelta(0) else ""
            minutes = int(abs(left).total_seconds() // 60)
            running = "" if state.sla.running_since else " (clock stopped)"
            lines.append(
                f"**SLA** {self.sla_state()}, {sign}{minutes // 60}h{minutes % 60:02d}m left"
                + running
            )
        lines.append(f"**Waiting for** {self.awaiting() or '-'}")
        workflow.set_current_details("  \n".join(lines))

    def awaiting(self) -> str | None:
        state = self.state
        if state.status in (EngineStatus.CLOSED, EngineStatus.CANCELLED):
            return None
        if state.status == EngineStatus.RESOLVED:
            return "closure (or a reopen)"
        if state.status == EngineStatus.PAUSED:
            return f"resume (paused by {state.paused_by})"
        active = self.active_elements()
        if not active:
            return "automation"
        element = active[0]
        if element.kind == "approval":
            votes = sum(v.decision == "approve" for v in element.votes)
            return f"{element.title} ({votes} of {element.required} approvals)"
        if element.kind == "documents":
            return "client documents"
        if element.kind == "client_acceptance":
            return "the client's answer to the proposal"
        return element.title


def initial_fields(inp: EngineCaseInput) -> dict[str, Any]:
    """What ``when`` conditions read: the profile, ``international`` and the case's data."""
    client = inp.client.model_dump(mode="json")
    return {
        **inp.data,
        "client": client,
        "international": inp.client.country.upper() != inp.case_type.home_country.upper(),
    }
