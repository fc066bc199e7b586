"""The SLA clock without Temporal: what falls due when, in active time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.enums import Stage
from schemas.plan import EscalationLevel, PredictiveAlert, StageSpec
from workflows.sla import MilestoneKind, SlaClock, milestones_for

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)

DOCS = StageSpec(
    stage=Stage.DOCUMENT_COLLECTION,
    title="Document collection",
    sla=timedelta(hours=24),
    owner_role="onboarding_team",
    warn_at=[0.8],
    predictive=PredictiveAlert(at=0.6, min_tasks_done=0.4),
    escalations=[
        EscalationLevel(level=1, after_breach=timedelta(0), target="onboarding_lead"),
        EscalationLevel(level=2, after_breach=timedelta(hours=4), target="head_of_operations"),
    ],
)


def test_milestones_of_a_24h_stage_fall_where_the_playbook_says():
    got = [(m.key, m.at_active) for m in milestones_for(DOCS)]
    assert got == [
        ("predictive", timedelta(hours=14, minutes=24)),
        ("warning:0.8", timedelta(hours=19, minutes=12)),
        ("breach", 24 * H),
        ("escalation:1", 24 * H),
        ("escalation:2", 28 * H),
    ]


def test_nothing_is_due_a_minute_before_the_warning_and_the_warning_is_due_at_it():
    clock = SlaClock.start(DOCS, T0)
    clock.fired.add("predictive")
    assert clock.due(T0 + timedelta(hours=19, minutes=11)) == []
    assert clock.next_deadline(T0 + timedelta(hours=19, minutes=11)) == T0 + timedelta(
        hours=19, minutes=12
    )
    due = clock.due(T0 + timedelta(hours=19, minutes=12))
    assert [m.kind for m in due] == [MilestoneKind.WARNING]
    assert clock.due(T0 + timedelta(hours=19, minutes=12)) == []  # fires once


def test_a_pause_moves_every_deadline_by_its_length():
    clock = SlaClock.start(DOCS, T0)
    clock.stop(T0 + 10 * H)
    assert clock.next_deadline(T0 + 20 * H) is None  # stopped: no timer at all
    clock.resume(T0 + 40 * H)
    assert clock.active(T0 + 40 * H) == 10 * H
    assert clock.paused(T0 + 40 * H) == 30 * H
    clock.fired.update({"predictive", "warning:0.8"})
    assert clock.next_deadline(T0 + 40 * H) == T0 + 54 * H  # 24h of active time
    assert clock.remaining(T0 + 50 * H) == 4 * H


def test_outcome_reflects_the_worst_thing_that_happened():
    clock = SlaClock.start(DOCS, T0)
    assert clock.outcome() == "met"
    clock.due(T0 + 20 * H)
    assert clock.outcome() == "warned"
    clock.due(T0 + 25 * H)
    assert clock.outcome() == "breached"


def test_a_stage_without_sla_has_no_deadlines():
    spec = StageSpec(stage=Stage.WELCOME, title="Welcome", owner_role="rm")
    clock = SlaClock.start(spec, T0)
    assert clock.next_deadline(T0) is None
    assert clock.outcome() == "none"
