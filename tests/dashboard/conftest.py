"""A small hand-checked dataset for the dashboard, in March 2031 so no other test's rows fall
in its window. "At risk now" has no window, so those cases are created in June 2031: newest
first, they head the list whatever else the shared database holds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, update

from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import Case, CaseEvent, NpsResponse, StageIntervalRow
from tests.conftest import new_ref
from tests.factories import profile

FROM = date(2031, 3, 1)
TO = date(2031, 4, 1)


def at(day: int, hour: int = 0, *, month: int = 3, second: int = 0) -> datetime:
    return datetime(2031, month, day, hour, 0, second, tzinfo=UTC)


@dataclass
class Seeded:
    """Refs by letter (A..K), as in the comments of ``seeded``."""

    refs: dict[str, str] = field(default_factory=dict)


# letter: (client_type, tier, status, sla_state, priority, ever_paused, created_at, closed_at)
CASES: dict[str, tuple[str, str, str, str | None, str, bool, datetime, datetime | None]] = {
    # closed in the window
    "A": ("individual", "standard", "completed", "on_track", "normal", False, at(1), at(1, 10)),
    "B": ("individual", "standard", "completed", "breached", "normal", False, at(2), at(3)),
    "C": ("business", "premium", "completed", "breached", "normal", True, at(5), at(5, 2)),
    "D": ("business", "premium", "rejected", "on_track", "normal", False, at(10), at(10, 1)),
    "E": (
        "individual",
        "standard",
        "completed",
        "breached",
        "normal",
        False,
        at(20, month=2),
        at(20),
    ),
    # closed exactly at the (exclusive) end of the window
    "F": (
        "individual",
        "standard",
        "completed",
        "on_track",
        "normal",
        False,
        at(25, month=3),
        at(1, month=4),
    ),
    # open: G, H, I at risk (newest first: I, H, G); J on track; K closed though breached
    "G": ("business", "premium", "open", "breached", "high", False, at(1, month=6), None),
    "H": ("individual", "standard", "open", "warning", "normal", False, at(2, month=6), None),
    "I": (
        "individual",
        "standard",
        "waiting_on_client",
        "at_risk",
        "elevated",
        False,
        at(3, month=6),
        None,
    ),
    "J": ("individual", "standard", "open", "on_track", "normal", False, at(4, month=6), None),
    "K": (
        "individual",
        "standard",
        "completed",
        "breached",
        "normal",
        False,
        at(5, month=6),
        at(6, month=6),
    ),
}

# letter, seq, stage, exited_at, sla_outcome, active_seconds, escalations
INTERVALS: list[tuple[str, int, str, datetime | None, str | None, float | None, int]] = [
    ("A", 1, "document_collection", at(1, 2), "met", 100.0, 0),
    ("B", 1, "document_collection", at(2, 5), "warned", 200.0, 0),
    ("C", 1, "document_collection", at(5, 1), "breached", 400.0, 1),
    ("E", 1, "document_collection", at(1), "breached", 1000.0, 2),  # inclusive start
    ("B", 3, "document_collection", at(2, 20), "met", 300.0, 0),  # after a send-back
    ("F", 1, "document_collection", at(28, 23, month=2, second=59), "breached", 99999.0, 0),
    ("A", 2, "compliance_review", at(1, 5), "met", 50.0, 0),
    ("B", 2, "compliance_review", at(2, 10), "breached", 5000.0, 1),
    ("C", 2, "compliance_review", at(5, 1), "met", 150.0, 0),
    ("D", 2, "compliance_review", at(10, 1), "none", 100.0, 0),
    ("G", 1, "compliance_review", None, None, None, 0),  # still open: not counted
    ("A", 3, "account_setup", at(1, 9), "met", 10.0, 0),
    ("C", 3, "account_setup", at(5, 2), "met", 30.0, 0),
    ("E", 3, "final_review", at(20), "none", 20.0, 0),
    ("F", 2, "account_setup", at(1, month=4), "breached", 7777.0, 0),  # exclusive end
]

# letter, kind
EVENTS: list[tuple[str, str]] = [
    ("A", "compliance_auto_approved"),
    ("B", "compliance_decision"),
    ("D", "sent_back"),
    ("E", "sla_breached"),  # automation's own doing: still an automated case
    ("F", "documents_waived"),
]

# letter, score, submitted_at
NPS: list[tuple[str, int, datetime]] = [
    ("A", 10, at(2)),
    ("B", 9, at(4)),
    ("C", 8, at(6)),
    ("D", 9, at(11)),
    ("E", 3, at(21)),
    ("F", 0, at(1, month=4)),  # outside
]


@pytest.fixture(scope="session")
async def seeded(sessions: SessionFactory) -> AsyncIterator[Seeded]:
    data = Seeded(refs={letter: new_ref("DSH") for letter in CASES})
    refs = data.refs
    async with sessions() as s:
        for letter, (ctype, tier, status, sla, prio, paused, created, closed) in CASES.items():
            ref = refs[letter]
            client = profile(client_type=ctype, tier=tier)
            await s.execute(insert_draft_case(ref=ref, client=client, requested_by="test"))
            await s.execute(
                update(Case)
                .where(Case.ref == ref)
                .values(
                    status=status,
                    stage="welcome" if closed else "compliance_review",
                    sla_state=sla,
                    priority=prio,
                    ever_paused=paused,
                    created_at=created,
                    closed_at=closed,
                )
            )
        rows: list[dict[str, Any]] = []
        for letter, seq, stage, exited, outcome, active, esc in INTERVALS:
            rows.append(
                {
                    "case_ref": refs[letter],
                    "seq": seq,
                    "stage": stage,
                    "entered_at": (exited or at(1, month=6)) - timedelta(hours=1),
                    "exited_at": exited,
                    "outcome": "done" if exited else None,
                    "sla_budget_seconds": None if outcome == "none" else 3600.0,
                    "sla_outcome": outcome,
                    "active_seconds": active,
                    "paused_seconds": 0.0,
                    "escalations": esc,
                }
            )
        await s.execute(insert(StageIntervalRow), rows)
        await s.execute(
            insert(CaseEvent),
            [
                {
                    "case_ref": refs[letter],
                    "event_key": f"seed-{i}",
                    "kind": kind,
                    "actor": "test",
                    "detail": {},
                    "occurred_at": at(15),
                }
                for i, (letter, kind) in enumerate(EVENTS)
            ],
        )
        await s.execute(
            insert(NpsResponse),
            [{"case_ref": refs[k], "score": sc, "submitted_at": ts} for k, sc, ts in NPS],
        )
        await s.commit()
    yield data
    async with sessions() as s:
        await s.execute(delete(Case).where(Case.ref.in_(list(refs.values()))))
        await s.commit()


# ----------------------------------------------------------------- straight-through processing
# A second hand-checked dataset, in September 2032 (before the roll-up tests' watermark of
# 2033-02-15, after nothing else): who took a human step, and how long each case took to
# complete. The window [2032-09-01, 2032-10-01) holds ISO weeks 36 (1-5 Sep, partial) to 40
# (27-30 Sep, partial). Engine cases count created -> resolved, v1 cases created -> closed.
STP_FROM = date(2032, 9, 1)
STP_TO = date(2032, 10, 1)


def sep(day: int, hour: int = 0, *, month: int = 9, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2032, month, day, hour, minute, second, tzinfo=UTC)


@dataclass(frozen=True)
class StpCase:
    client_type: str
    tier: str
    created: datetime
    closed: datetime | None
    resolved: datetime | None = None  # engine cases only
    status: str = "closed"  # engine: closed with a resolution; "completed": a v1 case
    resolution: str | None = "completed"
    case_type: str = "client_onboarding"
    paused: bool = False
    events: tuple[tuple[str, str], ...] = ()  # (kind, actor)


STP_CASES: dict[str, StpCase] = {
    # individual / standard: 3 completed, 1 with a person's approval -> STP 2 of 3
    "I1": StpCase(  # 1 d; W36; an approver voted
        "individual",
        "standard",
        sep(2),
        sep(4, 10),
        sep(3),
        events=(("approval_requested", "system"), ("approval_approve", "ann")),
    ),
    "I2": StpCase(  # 6 h; closed on Monday 6 Sep at midnight: W37, not W36
        "individual",
        "standard",
        sep(5),
        sep(6),
        sep(5, 6),
        events=(("auto_approved", "system"), ("auto_completed", "system")),
    ),
    "I3": StpCase(  # 12 h; W37; only the system and the SLA clock wrote
        "individual",
        "standard",
        sep(8),
        sep(9),
        sep(8, 12),
        events=(("stage_entered", "system"), ("sla_warning", "sla")),
    ),
    # business / premium: 4 completed, 1 straight through
    "B1": StpCase(  # 2 d; closed Sunday 19 Sep 23:59:59: W38; paused once
        "business",
        "premium",
        sep(14),
        sep(19, 23, minute=59, second=59),
        sep(16),
        paused=True,
        events=(("paused", "ann"), ("resumed", "ann")),
    ),
    "B2": StpCase(  # 3 h; W39; a person completed a task
        "business",
        "premium",
        sep(15),
        sep(21),
        sep(15, 3),
        events=(("task_opened", "system"), ("task_completed", "bob")),
    ),
    "B3": StpCase(  # 4 h; W40; a v1 case with a compliance decision
        "business",
        "premium",
        sep(27),
        sep(27, 4),
        status="completed",
        resolution=None,
        events=(("compliance_decision", "carl"),),
    ),
    "B4": StpCase(  # 1 h; W40; order approval, auto-approved
        "business",
        "premium",
        sep(28),
        sep(29),
        sep(28, 1),
        case_type="order_approval",
        events=(("auto_approved", "system"),),
    ),
    # not counted: rejected; still open; closed just before and at the window's end
    "R1": StpCase("individual", "standard", sep(10), sep(10, 5), sep(10, 1), resolution="rejected"),
    "O1": StpCase(
        "individual",
        "standard",
        sep(11),
        None,
        status="open",
        resolution=None,
        events=(("approval_approve", "ann"),),
    ),
    "X1": StpCase(
        "individual", "standard", sep(30, month=8), sep(31, 23, month=8), sep(31, 22, month=8)
    ),
    "X2": StpCase("business", "premium", sep(30), sep(1, month=10), sep(30, 1)),
}


@pytest.fixture(scope="session")
async def stp_seeded(sessions: SessionFactory) -> AsyncIterator[Seeded]:
    data = Seeded(refs={letter: new_ref("STP") for letter in STP_CASES})
    refs = data.refs
    async with sessions.begin() as s:
        for letter, c in STP_CASES.items():
            await s.execute(
                insert_draft_case(
                    ref=refs[letter],
                    client=profile(client_type=c.client_type, tier=c.tier),
                    requested_by="test",
                    case_type=c.case_type,
                    engine="onboarding-v1" if c.status == "completed" else "case",
                )
            )
            await s.execute(
                update(Case)
                .where(Case.ref == refs[letter])
                .values(
                    status=c.status,
                    resolution=c.resolution,
                    ever_paused=c.paused,
                    created_at=c.created,
                    resolved_at=c.resolved,
                    closed_at=c.closed,
                )
            )
        events = [
            {
                "case_ref": refs[letter],
                "event_key": f"stp-{i}",
                "kind": kind,
                "actor": actor,
                "detail": {},
                "occurred_at": c.created,
            }
            for letter, c in STP_CASES.items()
            for i, (kind, actor) in enumerate(c.events)
        ]
        await s.execute(insert(CaseEvent), events)
    yield data
    async with sessions.begin() as s:
        await s.execute(delete(Case).where(Case.ref.in_(list(refs.values()))))
