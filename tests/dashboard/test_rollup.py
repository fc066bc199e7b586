"""The daily roll-up answers exactly as the raw rows do (docs/dashboard.md).

A seeded, irregular dataset in January-March 2033 (no other test writes there): several case
types, client types and tiers, stages visited more than once, visits without an SLA or without
active time, exits at midnight, durations on bucket edges and repeated, engine cases that
resolve days before they close, human steps of the v1 workflow and of the case engine, the
system's own sign-offs, pauses, NPS answers of every class. The straight-through figures are
compared by segment and by ISO week too, weeks cut by the watermark and by changed days. Every
dashboard is built twice, from raw rows alone (``use_rollup=False``) and with the roll-up,
for several windows and filters, before a refresh, after one, after facts arrive late for days
already rolled up, and after the refresh that takes them in.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update

from api.services.dashboard import Dashboard, build_dashboard
from cli import dashboard as dashboard_cli
from schemas.dashboard_rollup import DASHBOARD_ROLLUP_WORKFLOW, RollupInput, RollupReport
from schemas.enums import ClientTier, ClientType
from store.cases import insert_draft_case
from store.dashboard_rollup import Coverage, plan_coverage, read_coverage, refresh
from store.db import SessionFactory
from store.models import (
    Case,
    CaseEvent,
    DashboardRollupDirty,
    DashboardRollupState,
    DashboardStageTotals,
    NpsResponse,
    StageIntervalRow,
)
from tests.conftest import new_ref, running_worker
from tests.factories import profile

FIRST, LAST = date(2033, 1, 1), date(2033, 3, 10)  # cases close up to early March
WATERMARK = date(2033, 2, 15)  # the first refresh rolls up the days before this one
STAGES = ("intake", "document_collection", "compliance_review", "approval", "final_review")
CASE_TYPES = ("client_onboarding", "order_approval")
ENGINE_STAFF_STEPS = [
    "approval_approve",
    "approval_reject",
    "task_completed",
    "checklist_ticked",
    "element_skipped",
    "paused",
]
SYSTEM_EVENTS = [
    "compliance_auto_approved",
    "sla_breached",
    "auto_approved",
    "auto_completed",
    "stage_entered",
]

WINDOWS = [
    (date(2033, 1, 1), date(2033, 3, 15)),  # everything
    (date(2032, 11, 1), date(2033, 6, 1)),  # wider than the data
    (date(2033, 1, 10), date(2033, 1, 11)),  # one day
    (date(2033, 1, 20), date(2033, 2, 25)),  # across the watermark
    (date(2033, 2, 1), date(2033, 2, 15)),  # ends at the watermark
]
FILTERS: list[dict[str, Any]] = [
    {},
    {"client_type": ClientType.BUSINESS},
    {"tier": ClientTier.PREMIUM},
    {"case_type": "order_approval"},
    {
        "client_type": ClientType.INDIVIDUAL,
        "tier": ClientTier.STANDARD,
        "case_type": "client_onboarding",
    },
]


def at(day: date, seconds: float = 0.0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)


@dataclass
class Data:
    refs: list[str]


def _active(rng: random.Random) -> float | None:
    roll = rng.random()
    if roll < 0.05:
        return None  # no active time recorded
    if roll < 0.10:
        return 0.0
    if roll < 0.20:
        return float(2 ** rng.randint(-2, 14))  # exactly on a bucket edge
    if roll < 0.30:
        return 3600.0  # the same value many times
    return round(rng.lognormvariate(8, 1.6), 3)


async def _seed(sessions: SessionFactory, rng: random.Random, n_cases: int) -> list[str]:
    refs: list[str] = []
    intervals: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    async with sessions.begin() as s:
        for i in range(n_cases):
            ref = new_ref("RUP")
            refs.append(ref)
            created = at(FIRST, rng.uniform(0, 55 * 86400))
            if i % 17 == 0:
                created = at(FIRST + timedelta(days=rng.randint(0, 50)))  # at midnight
            client_type = rng.choice(["individual", "individual", "business", "enterprise"])
            tier = rng.choice(["standard", "standard", "premium"])
            case_type = rng.choice(CASE_TYPES)
            t = created
            n_visits = rng.randint(1, 6)
            open_case = rng.random() < 0.15
            for seq in range(1, n_visits + 1):
                active = _active(rng)
                last_open = open_case and seq == n_visits
                exited = None if last_open else t + timedelta(seconds=(active or 300) * 1.1)
                if exited is not None and rng.random() < 0.05:  # exactly at midnight
                    exited = at(exited.date() + timedelta(days=1))
                intervals.append(
                    {
                        "case_ref": ref,
                        "seq": seq,
                        "stage": rng.choice(STAGES),
                        "entered_at": t,
                        "exited_at": exited,
                        "outcome": None if last_open else "completed",
                        "sla_budget_seconds": 3600.0,
                        "sla_outcome": None
                        if last_open
                        else rng.choice(["met", "met", "warned", "breached", "none", None]),
                        "active_seconds": None if last_open else active,
                        "paused_seconds": 0.0,
                        "escalations": rng.choice([0, 0, 0, 1, 2]),
                    }
                )
                if exited is not None:
                    t = exited
            status, resolution, resolved, closed = "open", None, None, None
            if not open_case:
                fate = rng.random()
                if fate < 0.45:
                    status, closed = "completed", t
                elif fate < 0.75:  # an engine case: resolved, closed days later
                    status, resolved = "closed", t
                    resolution = rng.choice(["completed", "completed", "rejected"])
                    closed = t + timedelta(days=rng.randint(1, 7), seconds=rng.uniform(0, 9999))
                elif fate < 0.9:
                    status, closed = "rejected", t
                else:
                    status, closed = "cancelled", t
            await s.execute(
                insert_draft_case(
                    ref=ref,
                    client=profile(client_type=client_type, tier=tier),
                    requested_by="test",
                    case_type=case_type,
                )
            )
            await s.execute(
                update(Case)
                .where(Case.ref == ref)
                .values(
                    status=status,
                    resolution=resolution,
                    created_at=created,
                    resolved_at=resolved,
                    closed_at=closed,
                    ever_paused=rng.random() < 0.1,
                )
            )
            roll = rng.random()
            if roll < 0.15:  # a human step of the frozen (v1) workflow
                kinds = [rng.choice(["compliance_decision", "documents_waived", "sent_back"])]
            elif roll < 0.3:  # a staff step of the case engine
                kinds = [rng.choice(ENGINE_STAFF_STEPS)]
            else:  # automation's own doing: the case may still be straight through
                kinds = rng.sample(SYSTEM_EVENTS, rng.randint(1, 2))
            events += [
                {
                    "case_ref": ref,
                    "event_key": f"seed-{i}",
                    "kind": kind,
                    "actor": "test",
                    "detail": {},
                    "occurred_at": created,
                }
                for i, kind in enumerate(kinds)
            ]
            if closed is not None and rng.random() < 0.5:
                answers.append(
                    {
                        "case_ref": ref,
                        "score": rng.randint(0, 10),
                        "submitted_at": closed + timedelta(hours=rng.uniform(0, 60)),
                    }
                )
        await s.execute(insert(StageIntervalRow), intervals)
        await s.execute(insert(CaseEvent), events)
        await s.execute(insert(NpsResponse), answers)
    return refs


@pytest.fixture(scope="module")
async def data(sessions: SessionFactory) -> AsyncIterator[Data]:
    refs = await _seed(sessions, random.Random(20330101), 240)
    yield Data(refs=refs)
    async with sessions.begin() as s:
        await s.execute(delete(Case).where(Case.ref.in_(refs)))


def _assert_same(rolled: Any, raw: Any, path: str = "") -> None:
    """Equal, floats up to rounding (averages and totals are sums of sums)."""
    if isinstance(raw, float) and isinstance(rolled, float):
        assert math.isclose(rolled, raw, rel_tol=1e-9, abs_tol=1e-6), path
    elif isinstance(raw, dict):
        assert isinstance(rolled, dict) and rolled.keys() == raw.keys(), path
        for key in raw:
            _assert_same(rolled[key], raw[key], f"{path}.{key}")
    elif isinstance(raw, list):
        assert isinstance(rolled, list) and len(rolled) == len(raw), path
        for i, (a, b) in enumerate(zip(rolled, raw, strict=True)):
            _assert_same(a, b, f"{path}[{i}]")
    else:
        assert rolled == raw, path


async def _both(
    sessions: SessionFactory,
    window: tuple[date, date],
    filters: dict[str, Any],
    stage_order: tuple[str, ...] = STAGES[:3],  # the other two by first appearance
    weeks: int = 8,
) -> tuple[Dashboard, Dashboard]:
    out = []
    for use_rollup in (True, False):
        async with sessions() as s:
            out.append(
                await build_dashboard(
                    s,
                    date_from=window[0],
                    date_to=window[1],
                    stage_order=stage_order,
                    use_rollup=use_rollup,
                    weeks=weeks,
                    **filters,
                )
            )
    return out[0], out[1]


def _medians(d: Dashboard) -> list[tuple[str, float | None]]:
    st = d.straight_through
    return [
        ("all", st.overall.median_seconds_to_complete),
        *((f"{s.dimension}={s.value}", s.median_seconds_to_complete) for s in st.by_segment),
        *((w.week, w.median_seconds_to_complete) for w in st.by_week),
    ]


async def _assert_rollup_equals_raw(sessions: SessionFactory) -> int:
    """Every window and filter: the same dashboard both ways; the p90s to the last bit."""
    compared = 0
    cases: list[tuple[tuple[date, date], dict[str, Any], tuple[str, ...], int]] = [
        (w, f, STAGES[:3], 8) for w in WINDOWS for f in FILTERS
    ]
    cases += [(WINDOWS[3], {}, (), 8), (WINDOWS[3], {}, STAGES, 8)]  # no declared order; all
    cases += [(WINDOWS[0], {}, STAGES[:3], 53), (WINDOWS[1], FILTERS[1], STAGES[:3], 1)]
    for window, filters, order, weeks in cases:
        rolled, raw = await _both(sessions, window, filters, order, weeks)
        where = f"{window} {filters} {order} {weeks} weeks"
        a = rolled.model_dump(exclude={"generated_at"})
        b = raw.model_dump(exclude={"generated_at"})
        _assert_same(a, b, where)
        assert [st.p90_active_seconds for st in rolled.stages] == [
            st.p90_active_seconds for st in raw.stages
        ], where
        assert rolled.end_to_end.p90_seconds == raw.end_to_end.p90_seconds, where
        assert _medians(rolled) == _medians(raw), where  # to the last bit
        compared += 1
    return compared


async def _coverage(sessions: SessionFactory, window: tuple[date, date]) -> Coverage:
    async with sessions() as s, s.begin():
        return await read_coverage(s, at(window[0]), at(window[1]))


async def test_the_rollup_answers_as_the_raw_rows_do(sessions: SessionFactory, data: Data) -> None:
    # the dataset is not trivial
    async with sessions() as s:
        everything = await build_dashboard(
            s, date_from=WINDOWS[0][0], date_to=WINDOWS[0][1], use_rollup=False
        )
    assert len(everything.stages) == len(STAGES)
    assert sum(st.visits for st in everything.stages) > 500
    assert everything.end_to_end.completed_cases > 50
    assert 0 < everything.automation.automated_cases < everything.automation.closed_cases
    assert everything.nps.responses > 50
    stp = everything.straight_through
    assert 0 < stp.overall.straight_through_cases < stp.overall.completed_cases
    assert len(stp.by_segment) == 3 + 2 + 2  # client types, tiers, case types
    # the last 8 ISO weeks (from 24 January); the cases close up to early March
    assert len(stp.by_week) == 8 and sum(w.completed_cases > 0 for w in stp.by_week) >= 4

    await _assert_rollup_equals_raw(sessions)  # whatever the roll-up held before

    report = await refresh(sessions, until=WATERMARK)
    assert report.refreshed and report.rolled_until is not None
    assert report.rolled_until >= WATERMARK
    whole = await _coverage(sessions, WINDOWS[0])
    if report.rolled_until == WATERMARK:  # the first refresh of this database's roll-up
        assert whole.runs == ((FIRST, WATERMARK - timedelta(days=1)),)
        assert whole.raw == ((at(WATERMARK), at(WINDOWS[0][1])),)
    assert await _assert_rollup_equals_raw(sessions) == len(WINDOWS) * len(FILTERS) + 4

    # facts arrive late for days already rolled up
    late_day = date(2033, 1, 12)
    one_day = (late_day, late_day + timedelta(days=1))
    before, _ = await _both(sessions, one_day, {})
    refs = data.refs
    async with sessions.begin() as s:
        await s.execute(
            insert(StageIntervalRow).values(
                case_ref=refs[0],
                seq=99,
                stage="compliance_review",
                entered_at=at(late_day, 3600),
                exited_at=at(late_day, 7200),
                outcome="completed",
                sla_outcome="breached",
                active_seconds=123456.0,
                escalations=3,
            )
        )
        closed = await s.scalar(
            select(Case.ref).where(Case.ref.in_(refs), Case.closed_at < at(WATERMARK)).limit(1)
        )
        await s.execute(  # a manual step on a closed case: no longer automated
            insert(CaseEvent).values(
                case_ref=closed,
                event_key="late",
                kind="documents_waived",
                actor="test",
                detail={},
                occurred_at=at(late_day),
            )
        )
        await s.execute(update(Case).where(Case.ref == closed).values(client_tier="premium"))
        unanswered = await s.scalar(
            select(Case.ref)
            .where(
                Case.ref.in_(refs),
                Case.closed_at.is_not(None),
                ~Case.ref.in_(select(NpsResponse.case_ref)),
            )
            .limit(1)
        )
        await s.execute(
            insert(NpsResponse).values(case_ref=unanswered, score=2, submitted_at=at(late_day, 60))
        )
        open_ref = await s.scalar(
            select(Case.ref).where(Case.ref.in_(refs), Case.status == "open").limit(1)
        )
        await s.execute(  # closed, back-dated, on a rolled-up day
            update(Case)
            .where(Case.ref == open_ref)
            .values(status="completed", closed_at=at(date(2033, 2, 3), 5))
        )
    after, _ = await _both(sessions, one_day, {})  # the late visit shows at once
    visits = {st.stage: (st.visits, st.breaches) for st in before.stages}
    seen, breached = visits.get("compliance_review", (0, 0))
    assert {st.stage: (st.visits, st.breaches) for st in after.stages}["compliance_review"] == (
        seen + 1,
        breached + 1,
    )
    hole = await _coverage(sessions, WINDOWS[0])
    assert late_day not in _days(hole.runs) and date(2033, 2, 3) not in _days(hole.runs)
    await _assert_rollup_equals_raw(sessions)  # the changed days come from raw rows

    second = await refresh(sessions, until=WATERMARK)
    assert second.dirty_days >= 2 and second.first_day is not None
    assert second.first_day <= late_day
    healed = await _coverage(sessions, WINDOWS[0])
    assert {late_day, date(2033, 2, 3)} <= _days(healed.runs)
    await _assert_rollup_equals_raw(sessions)

    third = await refresh(sessions, until=WATERMARK)  # nothing changed since
    assert (third.refreshed, third.days, third.dirty_days) == (True, 0, 0)


def _days(runs: tuple[tuple[date, date], ...]) -> set[date]:
    out: set[date] = set()
    for a, b in runs:
        out |= {a + timedelta(days=i) for i in range((b - a).days + 1)}
    return out


async def test_the_rollup_is_what_answers(sessions: SessionFactory, data: Data) -> None:
    """Not a raw query in disguise: a rolled-up total changed behind the triggers' back shows
    in the dashboard (and only with the roll-up), until a refresh recomputes that day."""
    await refresh(sessions, until=WATERMARK)
    day = date(2033, 1, 15)
    d = DashboardStageTotals
    window = (day, day + timedelta(days=1))
    _, before = await _both(sessions, window, {})
    shown = [st.stage for st in before.stages if st.visits]  # a stage the dashboard lists
    async with sessions.begin() as s:
        one = (
            await s.execute(
                select(d.case_type, d.client_type, d.tier, d.stage)
                .where(d.day == day, d.stage.in_(shown), d.visits > 0)
                .order_by(d.case_type, d.client_type, d.tier, d.stage)
            )
        ).first()
        assert one is not None
        target = one.stage
        await s.execute(
            update(d)
            .where(
                d.day == day,
                d.case_type == one.case_type,
                d.client_type == one.client_type,
                d.tier == one.tier,
                d.stage == target,
            )
            .values(visits=d.visits + 1000)
        )
    rolled, raw = await _both(sessions, window, {})
    visits = {st.stage: st.visits for st in raw.stages}
    assert {st.stage: st.visits for st in rolled.stages} == {
        **visits,
        target: visits[target] + 1000,
    }
    await refresh(sessions, since=day, until=WATERMARK)  # --since recomputes that day
    rolled, raw = await _both(sessions, window, {})
    assert [st.visits for st in rolled.stages] == [st.visits for st in raw.stages]


async def test_a_refresh_never_moves_the_watermark_back(sessions: SessionFactory) -> None:
    await refresh(sessions, until=WATERMARK)
    report = await refresh(sessions, until=date(2033, 1, 1))
    assert report.rolled_until is not None and report.rolled_until >= WATERMARK
    async with sessions() as s:
        stored = await s.scalar(select(DashboardRollupState.rolled_until))
        markers = await s.scalar(select(func.count()).select_from(DashboardRollupDirty))
    assert stored == report.rolled_until
    assert markers == 0  # each refresh clears the markers it saw


def test_coverage_splits_a_window_into_rolled_days_and_raw_ranges() -> None:
    start, end = at(date(2033, 1, 1)), at(date(2033, 1, 10))
    # nothing rolled up: all raw
    assert plan_coverage(start, end, None) == Coverage(runs=(), raw=((start, end),))
    # rolled up to the 6th, the 3rd changed since
    split = plan_coverage(start, end, date(2033, 1, 6), {date(2033, 1, 3), date(2034, 1, 1)})
    assert split.runs == (
        (date(2033, 1, 1), date(2033, 1, 2)),
        (date(2033, 1, 4), date(2033, 1, 5)),
    )
    assert split.raw == (
        (at(date(2033, 1, 3)), at(date(2033, 1, 4))),
        (at(date(2033, 1, 6)), end),
    )
    # a window that starts and ends inside days: the partial days are raw
    ragged = plan_coverage(start + timedelta(hours=5), end - timedelta(hours=1), date(2034, 1, 1))
    assert ragged.runs == ((date(2033, 1, 2), date(2033, 1, 8)),)
    assert ragged.raw == (
        (start + timedelta(hours=5), at(date(2033, 1, 2))),
        (at(date(2033, 1, 9)), end - timedelta(hours=1)),
    )
    # every day changed: nothing from the roll-up
    every = {date(2033, 1, d) for d in range(1, 10)}
    assert plan_coverage(start, end, date(2034, 1, 1), every).runs == ()


async def _answer_late(sessions: SessionFactory, refs: list[str], day: date) -> None:
    """An NPS answer arrives for a day already rolled up."""
    async with sessions.begin() as s:
        ref = await s.scalar(
            select(Case.ref)
            .where(
                Case.ref.in_(refs),
                Case.closed_at.is_not(None),
                ~Case.ref.in_(select(NpsResponse.case_ref)),
            )
            .limit(1)
        )
        await s.execute(insert(NpsResponse).values(case_ref=ref, score=10, submitted_at=at(day)))


async def test_the_workflow_takes_late_facts_in(
    time_skipping_env: Any, sessions: SessionFactory, data: Data
) -> None:
    """What the schedule starts: the DashboardRollup workflow runs the refresh activity."""
    await refresh(sessions, until=WATERMARK)
    day = date(2033, 1, 25)
    await _answer_late(sessions, data.refs, day)
    assert day not in _days((await _coverage(sessions, WINDOWS[0])).runs)

    env = time_skipping_env
    async with running_worker(env.client, sessions) as worker:
        report = await env.client.execute_workflow(
            DASHBOARD_ROLLUP_WORKFLOW,
            RollupInput(until=WATERMARK),
            id=f"dashboard-rollup-{uuid.uuid4().hex[:8]}",
            task_queue=worker.task_queue,
            result_type=RollupReport,
        )
    assert report.refreshed and report.first_day is not None and report.first_day <= day
    assert day in _days((await _coverage(sessions, WINDOWS[0])).runs)
    rolled, raw = await _both(sessions, (day, day + timedelta(days=1)), {})
    assert rolled.nps == raw.nps and rolled.nps.promoters >= 1


async def test_the_cli_refreshes_from_a_day(
    sessions: SessionFactory, database_url: str, data: Data, capsys: pytest.CaptureFixture[str]
) -> None:
    await refresh(sessions, until=WATERMARK)
    code = await asyncio.to_thread(
        dashboard_cli.main,
        ["dashboard", "rollup", "--since", "2033-01-20"],
        database_url=database_url,
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert re.search(r"recomputed \d+ day\(s\) from 2033-01-20", out.out), out.out
    assert "rolled up to" in out.out

    with pytest.raises(SystemExit) as exc:
        dashboard_cli.main(
            ["dashboard", "rollup", "--since", "last week"], database_url=database_url
        )
    assert exc.value.code == 2
    assert "'last week' is not a date (YYYY-MM-DD)" in capsys.readouterr().err


async def test_the_dashboards_bucket_edges_are_the_stored_functions(
    sessions: SessionFactory,
) -> None:
    # The dashboard buckets today's raw rows with width_bucket over BUCKET_EDGES; the refresh
    # stores them with migration 0013's dashboard_bucket. Two copies of one definition: at
    # every edge, just below and above it, between edges and outside the range, they agree.
    from sqlalchemy import bindparam, literal
    from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION

    from store.dashboard_rollup import BUCKET_EDGES, bucket

    probes = [0.0, 1e-9, 1e12]
    for lo, hi in itertools.pairwise(BUCKET_EDGES):
        probes += [lo, math.nextafter(lo, 0.0), math.nextafter(lo, math.inf), (lo + hi) / 2]
    probes.append(BUCKET_EDGES[-1])
    x = func.unnest(bindparam("xs", probes, type_=ARRAY(DOUBLE_PRECISION))).column_valued("x")
    edges = literal(list(BUCKET_EDGES), ARRAY(DOUBLE_PRECISION))
    stmt = select(x, bucket(x), func.width_bucket(x, edges))
    async with sessions() as s:
        rows = (await s.execute(stmt)).all()
    assert len(rows) == len(probes)
    differ = [(v, stored, sent) for v, stored, sent in rows if stored != sent]
    assert not differ, differ[:5]


async def test_the_second_connection_reads_the_dashboards_snapshot(
    sessions: SessionFactory, data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the roll-up, the straight-through figures run on a second connection while the
    first computes the rest; both read the snapshot the dashboard began
    with, so a case completed in between shows in no figure (and would, a moment later)."""
    from api.services import dashboard as svc

    await refresh(sessions, until=WATERMARK)
    window = WINDOWS[0]

    async def build() -> Dashboard:
        async with sessions() as s:
            return await build_dashboard(s, date_from=window[0], date_to=window[1])

    before = await build()
    async with sessions() as s:
        target = await s.scalar(
            select(Case.ref)
            .where(Case.ref.in_(data.refs), Case.status == "open")
            .order_by(Case.ref)
            .limit(1)
        )
    assert target is not None
    completed = {"status": "completed", "closed_at": at(date(2033, 3, 1))}  # a raw day
    backends: dict[str, int] = {}
    p90s, straight_through = svc._p90s, svc.straight_through

    async def p90s_on(session: Any, **kw: Any) -> Any:
        backends["first"] = await session.scalar(select(func.pg_backend_pid()))
        return await p90s(session, **kw)

    async def straight_through_on(session: Any, **kw: Any) -> Any:
        # committed after the dashboard's snapshot, before this connection's first read
        async with sessions.begin() as other:
            await other.execute(update(Case).where(Case.ref == target).values(**completed))
        backends["second"] = await session.scalar(select(func.pg_backend_pid()))
        return await straight_through(session, **kw)

    monkeypatch.setattr(svc, "_p90s", p90s_on)
    monkeypatch.setattr(svc, "straight_through", straight_through_on)
    try:
        during = await build()
        monkeypatch.undo()
        after = await build()
    finally:
        async with sessions.begin() as s:
            await s.execute(
                update(Case).where(Case.ref == target).values(status="open", closed_at=None)
            )
    assert backends["first"] != backends["second"]  # two connections
    done = before.straight_through.overall.completed_cases
    assert during.straight_through.overall.completed_cases == done
    assert during.end_to_end.completed_cases == before.end_to_end.completed_cases
    _assert_same(
        during.model_dump(exclude={"generated_at"}), before.model_dump(exclude={"generated_at"})
    )
    assert after.straight_through.overall.completed_cases == done + 1
    assert after.end_to_end.completed_cases == before.end_to_end.completed_cases + 1


async def test_a_small_or_busy_pool_builds_the_page_on_one_connection(
    database_url: str, sessions: SessionFactory, data: Data
) -> None:
    """A dashboard never waits on the pool for its second connection (were every connection
    held by a dashboard waiting for another, none would come): with a pool of one, or with
    half the pool in use, the page is built on its one connection, with the same figures."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from api.services import dashboard as svc
    from store.db import make_session_factory

    await refresh(sessions, until=WATERMARK)
    window = WINDOWS[0]

    async def build(factory: Any) -> Dashboard:
        async with factory() as s:
            return await build_dashboard(s, date_from=window[0], date_to=window[1])

    expected = await build(sessions)
    # one connection, and a pool that fails at once rather than hangs if asked for a second
    tiny = create_async_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=1)
    four = create_async_engine(database_url, pool_size=4, max_overflow=0, pool_timeout=1)
    try:
        got = await asyncio.wait_for(build(make_session_factory(tiny)), timeout=30)
        assert got.model_dump(exclude={"generated_at"}) == expected.model_dump(
            exclude={"generated_at"}
        )
        assert not svc._may_take_second(tiny)
        # four connections: a second is taken while fewer than two are in use ...
        assert svc._may_take_second(four)
        async with four.connect() as held:
            await held.exec_driver_sql("SELECT 1")
            async with four.connect() as also_held:
                await also_held.exec_driver_sql("SELECT 1")
                assert not svc._may_take_second(four)  # ... and not while two are
                got = await asyncio.wait_for(build(make_session_factory(four)), timeout=30)
        assert got.model_dump(exclude={"generated_at"}) == expected.model_dump(
            exclude={"generated_at"}
        )
        assert svc._SECONDS_IN_USE == {}  # every second connection given back
    finally:
        await tiny.dispose()
        await four.dispose()
