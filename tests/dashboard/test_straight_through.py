"""Straight-through processing on the dashboard, against answers worked out by hand from
``conftest.py``'s September 2032 dataset (``STP_CASES``), from raw rows and from the roll-up.

Completed in the window, with their time to complete and who took a step:

| case | segment | seconds | closed (ISO week) | human step | straight through |
|---|---|---:|---|---|---|
| I1 | individual / standard | 86,400 | W36 | approval_approve by ann | no |
| I2 | individual / standard | 21,600 | W37 (Monday 00:00) | system only | yes |
| I3 | individual / standard | 43,200 | W37 | system and SLA only | yes |
| B1 | business / premium | 172,800 | W38 (Sunday 23:59:59) | paused | no |
| B2 | business / premium | 10,800 | W39 | task_completed by bob | no |
| B3 | business / premium, v1 | 14,400 | W40 | compliance_decision | no |
| B4 | business / premium, order approval | 3,600 | W40 | system only | yes |

Medians follow ``percentile_cont(0.5)``: the middle value, or the mean of the two middle ones.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import delete

from api.services.dashboard import (
    REFERENCE_MANUAL_GATE_PCT,
    REFERENCE_STP_PCT,
    Dashboard,
    StraightThrough,
    Window,
    build_dashboard,
    last_weeks,
)
from schemas.enums import ClientType
from store.dashboard_rollup import VERSION_METRIC, read_coverage, refresh
from store.db import SessionFactory
from store.models import DashboardValue
from tests.dashboard.conftest import STP_FROM, STP_TO, Seeded, sep

approx = pytest.approx
WATERMARK = date(2033, 2, 15)  # the roll-up tests' own: the watermark never moves back


async def _dashboard(sessions: SessionFactory, *, use_rollup: bool, **kw: Any) -> Dashboard:
    async with sessions() as s:
        return await build_dashboard(
            s, date_from=STP_FROM, date_to=STP_TO, use_rollup=use_rollup, **kw
        )


async def _rolled_up(sessions: SessionFactory) -> None:
    """Refresh, and check the whole window is now read from the roll-up."""
    await refresh(sessions, until=WATERMARK)
    async with sessions() as s, s.begin():
        coverage = await read_coverage(s, sep(1), sep(1, month=10))
    assert coverage.runs == ((STP_FROM, STP_TO - timedelta(days=1)),) and not coverage.raw


def _figures(f: Any) -> tuple[int, int, int, float | None, float | None, float | None]:
    return (
        f.completed_cases,
        f.straight_through_cases,
        f.manual_gate_cases,
        f.stp_rate_pct,
        f.manual_gate_rate_pct,
        f.median_seconds_to_complete,
    )


def _check_the_hand_worked_answers(st: StraightThrough) -> None:
    assert (st.reference.stp_rate_pct, st.reference.manual_gate_rate_pct) == (92.0, 8.0)
    assert _figures(st.overall) == (7, 3, 4, approx(300 / 7), approx(400 / 7), 21600.0)
    segments = {(s.dimension, s.value): _figures(s) for s in st.by_segment}
    individual = (3, 2, 1, approx(66.6667, abs=1e-4), approx(33.3333, abs=1e-4), 43200.0)
    business = (4, 1, 3, 25.0, 75.0, 10800 + 0.5 * (14400 - 10800))
    assert segments == {
        ("client_type", "individual"): individual,
        ("client_type", "business"): business,
        ("tier", "standard"): individual,
        ("tier", "premium"): business,
        # 10800 14400 21600 | 43200 86400 172800: between the third and the fourth
        ("case_type", "client_onboarding"): (6, 2, 4, approx(100 / 3), approx(200 / 3), 32400.0),
        ("case_type", "order_approval"): (1, 1, 0, 100.0, 0.0, 3600.0),
    }
    # client types, then tiers (declared order), then case types (by name)
    assert [(s.dimension, s.value) for s in st.by_segment] == list(segments)
    weeks = [(w.week, w.date_from, w.date_to, w.partial, _figures(w)) for w in st.by_week]
    assert weeks == [
        ("2032-W36", sep(1).date(), sep(6).date(), True, (1, 0, 1, 0.0, 100.0, 86400.0)),
        ("2032-W37", sep(6).date(), sep(13).date(), False, (2, 2, 0, 100.0, 0.0, 32400.0)),
        ("2032-W38", sep(13).date(), sep(20).date(), False, (1, 0, 1, 0.0, 100.0, 172800.0)),
        ("2032-W39", sep(20).date(), sep(27).date(), False, (1, 0, 1, 0.0, 100.0, 10800.0)),
        ("2032-W40", sep(27).date(), STP_TO, True, (2, 1, 1, 50.0, 50.0, 9000.0)),
    ]


async def test_straight_through_by_segment_and_week(
    sessions: SessionFactory, stp_seeded: Seeded
) -> None:
    raw = await _dashboard(sessions, use_rollup=False)
    _check_the_hand_worked_answers(raw.straight_through)
    await _rolled_up(sessions)
    rolled = await _dashboard(sessions, use_rollup=True)
    _check_the_hand_worked_answers(rolled.straight_through)
    assert rolled.straight_through == raw.straight_through  # to the last bit
    # the end-to-end tile counts the same completed cases
    assert raw.end_to_end.completed_cases == raw.straight_through.overall.completed_cases == 7


async def test_a_human_step_of_the_engine_is_not_automation(
    sessions: SessionFactory, stp_seeded: Seeded
) -> None:
    """The automation figure (cases closed, any resolution) uses the same definition: a
    person's vote, task, pause or v1 decision makes a case manual; the system's own
    sign-offs do not. Closed: the seven completed and R1 (rejected, nobody acted)."""
    for use_rollup in (False, True):
        if use_rollup:
            await _rolled_up(sessions)
        a = (await _dashboard(sessions, use_rollup=use_rollup)).automation
        assert (a.closed_cases, a.automated_cases, a.manual_cases) == (8, 4, 4)
        assert (a.automation_rate_pct, a.manual_share_pct) == (50.0, 50.0)


async def test_filters_and_fewer_weeks(sessions: SessionFactory, stp_seeded: Seeded) -> None:
    await _rolled_up(sessions)
    for use_rollup in (False, True):
        d = await _dashboard(
            sessions, use_rollup=use_rollup, client_type=ClientType.INDIVIDUAL, weeks=3
        )
        st = d.straight_through
        assert d.filters.weeks == 3
        assert _figures(st.overall)[:3] == (3, 2, 1) and st.overall.stp_rate_pct == approx(200 / 3)
        assert [(s.dimension, s.value, s.completed_cases) for s in st.by_segment] == [
            ("client_type", "individual", 3),
            ("tier", "standard", 3),
            ("case_type", "client_onboarding", 3),
        ]
        # the last three weeks: none of the individual cases closed then
        assert [(w.week, w.completed_cases, w.stp_rate_pct) for w in st.by_week] == [
            ("2032-W38", 0, None),
            ("2032-W39", 0, None),
            ("2032-W40", 0, None),
        ]
        assert st.by_week[0].median_seconds_to_complete is None


async def test_a_rollup_of_other_definitions_is_not_read_but_rebuilt(
    sessions: SessionFactory, stp_seeded: Seeded
) -> None:
    """A roll-up built before human steps included the engine's (no version recorded) would
    count I1, B2 as automated: it is not read (raw rows answer) and the next refresh builds
    it again from the first day."""
    await _rolled_up(sessions)
    async with sessions.begin() as s:
        await s.execute(delete(DashboardValue).where(DashboardValue.metric == VERSION_METRIC))
    async with sessions() as s, s.begin():
        coverage = await read_coverage(s, sep(1), sep(1, month=10))
    assert coverage.runs == ()
    _check_the_hand_worked_answers((await _dashboard(sessions, use_rollup=True)).straight_through)
    report = await refresh(sessions, until=WATERMARK)
    assert report.full and report.first_day is not None and report.first_day <= STP_FROM
    await _rolled_up(sessions)
    _check_the_hand_worked_answers((await _dashboard(sessions, use_rollup=True)).straight_through)


def test_the_reference_is_the_reference_teams_outcome() -> None:
    assert (REFERENCE_STP_PCT, REFERENCE_MANUAL_GATE_PCT) == (92.0, 8.0)


def test_last_weeks_are_iso_weeks_cut_at_the_window() -> None:
    window = Window.from_dates(STP_FROM, STP_TO)
    weeks = last_weeks(window, 8)  # only five overlap September 2032
    assert [(w.monday, w.start, w.end) for w in weeks] == [
        (date(2032, 8, 30), date(2032, 9, 1), date(2032, 9, 6)),
        (date(2032, 9, 6), date(2032, 9, 6), date(2032, 9, 13)),
        (date(2032, 9, 13), date(2032, 9, 13), date(2032, 9, 20)),
        (date(2032, 9, 20), date(2032, 9, 20), date(2032, 9, 27)),
        (date(2032, 9, 27), date(2032, 9, 27), date(2032, 10, 1)),
    ]
    assert [w.monday for w in last_weeks(window, 2)] == [date(2032, 9, 20), date(2032, 9, 27)]
    one_day = last_weeks(Window.from_dates(date(2032, 9, 8), date(2032, 9, 9)), 8)
    assert [(w.monday, w.start, w.end) for w in one_day] == [
        (date(2032, 9, 6), date(2032, 9, 8), date(2032, 9, 9))
    ]
    # a year's turn: ISO week 1 of 2033 starts on Monday 3 January 2033
    turn = last_weeks(Window.from_dates(date(2032, 12, 27), date(2033, 1, 10)), 8)
    assert [w.monday for w in turn] == [date(2032, 12, 27), date(2033, 1, 3)]
