"""The SLA clock of one stage visit. Pure code: no Temporal, no I/O, no wall clock.

The clock counts *active* time only: it stops while the case is paused (or waiting on the client,
when the stage says so). The workflow asks it when the next milestone falls due, sleeps on one
durable timer until then (or until something changes), and fires what is due. That needs no
polling, and it survives worker restarts because the clock's state is rebuilt by replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from schemas.enums import SlaState
from schemas.plan import EscalationLevel, PredictiveAlert


class StageSlaSpec(Protocol):
    """What the clock needs of a stage: the frozen playbook's StageSpec and the engine's
    StageDef both have it."""

    @property
    def sla(self) -> timedelta | None: ...
    @property
    def warn_at(self) -> list[float]: ...
    @property
    def predictive(self) -> PredictiveAlert | None: ...
    @property
    def escalations(self) -> list[EscalationLevel]: ...


class MilestoneKind(StrEnum):
    WARNING = "warning"
    PREDICTIVE = "predictive"
    BREACH = "breach"
    ESCALATION = "escalation"


@dataclass(frozen=True)
class Milestone:
    key: str  # unique within a stage visit, e.g. "warning:0.8", "escalation:2"
    kind: MilestoneKind
    at_active: timedelta  # when it falls due, in active time since the stage began
    level: int = 0  # escalation level
    target: str | None = None  # escalation target role
    fraction: float | None = None  # warning threshold / predictive checkpoint


def milestones_for(spec: StageSlaSpec) -> list[Milestone]:
    """Everything the stage's SLA will ever fire, in the order it falls due."""
    if spec.sla is None:
        return []
    budget = spec.sla
    items = [
        Milestone(f"warning:{f}", MilestoneKind.WARNING, budget * f, fraction=f)
        for f in spec.warn_at
    ]
    if spec.predictive is not None:
        items.append(
            Milestone(
                "predictive",
                MilestoneKind.PREDICTIVE,
                budget * spec.predictive.at,
                fraction=spec.predictive.at,
            )
        )
    items.append(Milestone("breach", MilestoneKind.BREACH, budget))
    items += [
        Milestone(
            f"escalation:{e.level}",
            MilestoneKind.ESCALATION,
            budget + e.after_breach,
            level=e.level,
            target=e.target,
        )
        for e in spec.escalations
    ]
    order = {
        MilestoneKind.WARNING: 0,
        MilestoneKind.PREDICTIVE: 1,
        MilestoneKind.BREACH: 2,
        MilestoneKind.ESCALATION: 3,
    }
    return sorted(items, key=lambda m: (m.at_active, order[m.kind], m.level))


@dataclass
class SlaClock:
    """Active/paused time and fired milestones of one stage visit."""

    started_at: datetime
    budget: timedelta | None
    milestones: list[Milestone]
    active_before: timedelta = timedelta(0)  # active time banked before `running_since`
    running_since: datetime | None = None  # None while stopped
    paused_total: timedelta = timedelta(0)
    stopped_since: datetime | None = None
    fired: set[str] = field(default_factory=set)
    state: SlaState = SlaState.ON_TRACK
    escalation_level: int = 0
    escalations: int = 0

    @classmethod
    def start(cls, spec: StageSlaSpec, now: datetime, *, running: bool = True) -> SlaClock:
        clock = cls(started_at=now, budget=spec.sla, milestones=milestones_for(spec))
        if running:
            clock.running_since = now
        else:
            clock.stopped_since = now
        return clock

    @property
    def running(self) -> bool:
        return self.running_since is not None

    def active(self, now: datetime) -> timedelta:
        if self.running_since is None:
            return self.active_before
        return self.active_before + (now - self.running_since)

    def paused(self, now: datetime) -> timedelta:
        if self.stopped_since is None:
            return self.paused_total
        return self.paused_total + (now - self.stopped_since)

    def stop(self, now: datetime) -> None:
        """Stop counting (pause, or waiting on the client where the stage allows it)."""
        if self.running_since is None:
            return
        self.active_before += now - self.running_since
        self.running_since = None
        self.stopped_since = now

    def resume(self, now: datetime) -> None:
        if self.running_since is not None:
            return
        if self.stopped_since is not None:
            self.paused_total += now - self.stopped_since
        self.stopped_since = None
        self.running_since = now

    def remaining(self, now: datetime) -> timedelta | None:
        if self.budget is None:
            return None
        return self.budget - self.active(now)

    def next_deadline(self, now: datetime) -> datetime | None:
        """Wall-clock time of the next unfired milestone, if the clock keeps running."""
        if self.running_since is None:
            return None
        active = self.active(now)
        for m in self.milestones:
            if m.key not in self.fired:
                return now + max(timedelta(0), m.at_active - active)
        return None

    def due(self, now: datetime) -> list[Milestone]:
        """Unfired milestones whose time has come, oldest first. Marks them fired."""
        active = self.active(now)
        ready = [m for m in self.milestones if m.key not in self.fired and m.at_active <= active]
        self.fired.update(m.key for m in ready)
        return ready

    def outcome(self) -> str:
        """How the stage did against its SLA, for the read model and the dashboard."""
        if self.budget is None:
            return "none"
        if "breach" in self.fired:
            return "breached"
        if any(k.startswith("warning") for k in self.fired) or self.state == SlaState.AT_RISK:
            return "warned"
        return "met"
