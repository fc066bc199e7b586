"""Working-time arithmetic over a pinned calendar (Mon-Fri 09:00-17:30 Europe/London, bank
holidays of England): deadlines, time used, pauses, DST, and what the explanation skips."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from playbooks.calendars import load_calendars, resolve
from playbooks.registry import DEFAULT_FOLDER
from schemas import workcal
from schemas.calendar import CalendarDef
from workflows.engine import clock

UK = load_calendars([DEFAULT_FOLDER])[0]["uk_business_hours"]
PINNED = resolve(UK, datetime(2026, 11, 30, tzinfo=UTC))
H = timedelta(hours=1)


def london(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    """A London wall time as UTC (the tests pick dates whose offset they know)."""
    bst = date(y, 3, 29) <= date(y, m, d) < date(y, 10, 25)  # 2026/2027 summer time, roughly
    return datetime(y, m, d, hh, mm, tzinfo=UTC) - (H if bst else timedelta(0))


def test_friday_afternoon_8h_is_due_monday_afternoon() -> None:
    friday = london(2026, 12, 4, 16)
    assert workcal.add(PINNED, friday, 8 * H) == london(2026, 12, 7, 15, 30)
    assert workcal.working(PINNED, friday, london(2026, 12, 7, 15, 30)) == 8 * H


def test_a_bank_holiday_monday_moves_it_to_tuesday() -> None:
    friday = london(2027, 4, 30, 16)  # May Day is Monday 3 May 2027; summer time
    due = workcal.add(PINNED, friday, 8 * H)
    assert due == london(2027, 5, 4, 15, 30) == datetime(2027, 5, 4, 14, 30, tzinfo=UTC)
    skipped = workcal.skipped_days(PINNED, friday, due)
    assert [(s.day.isoformat(), s.why) for s in skipped] == [
        ("2027-05-01", "weekend"),
        ("2027-05-02", "weekend"),
        ("2027-05-03", "holiday: May Day"),
    ]


def test_time_outside_hours_counts_nothing_and_a_deadline_lands_inside_hours() -> None:
    saturday = london(2026, 12, 5, 10)
    assert workcal.working(PINNED, saturday, london(2026, 12, 6, 23)) == timedelta(0)
    assert workcal.add(PINNED, saturday, 30 * timedelta(minutes=1)) == london(2026, 12, 7, 9, 30)
    evening = london(2026, 12, 7, 20)
    assert workcal.add(PINNED, evening, H) == london(2026, 12, 8, 10)


def test_across_the_clocks_going_back_hours_stay_local() -> None:
    friday = london(2026, 10, 23, 16)  # 15:00 UTC in summer time; clocks go back on the 25th
    assert friday == datetime(2026, 10, 23, 15, 0, tzinfo=UTC)
    due = workcal.add(PINNED, friday, 2 * H)  # 1.5h on Friday, 0.5h on Monday
    assert due == datetime(2026, 10, 26, 9, 30, tzinfo=UTC)  # Monday 09:30 GMT
    assert workcal.to_local(PINNED, due) == datetime(2026, 10, 26, 9, 30)


def test_easter_closes_friday_and_monday() -> None:
    thursday = london(2027, 3, 25, 17)  # Good Friday 26 March, Easter Monday 29 March 2027
    due = workcal.add(PINNED, thursday, H)
    assert workcal.to_local(PINNED, due) == datetime(2027, 3, 30, 9, 30)


def test_a_pause_over_the_weekend_consumes_nothing() -> None:
    from schemas.case_state import SlaTimerState

    friday = london(2026, 12, 4, 16)
    sla = SlaTimerState(started_at=friday, budget_seconds=8 * 3600, running_since=friday)
    clock.stop(sla, london(2026, 12, 4, 17), PINNED)  # paused Friday 17:00 after 1h
    clock.resume(sla, london(2026, 12, 7, 12))  # resumed Monday noon: 3h of office time later
    assert clock.active(sla, london(2026, 12, 7, 12), PINNED) == H
    # 7h left: Monday 12:00-17:30 is 5.5h, then 1.5h on Tuesday morning
    assert clock.due_at(sla, london(2026, 12, 7, 12), PINNED) == london(2026, 12, 8, 10, 30)


def test_without_a_calendar_it_is_wall_clock_time() -> None:
    friday = london(2026, 12, 4, 16)
    assert workcal.add(None, friday, 8 * H) == friday + 8 * H
    assert workcal.working(None, friday, friday + 50 * H) == 50 * H


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("hours: {mon: ['17:00-09:00']}", "end must be after the start"),
        ("hours: {mon: ['09:00-12:00', '11:00-13:00']}", "overlap"),
        ("hours: {monday: ['09:00-17:00']}", "unknown weekday"),
        ("hours: {mon: []}", "needs some working hours"),
        ("time_zone: Mars/Olympus", "unknown time zone"),
        ("holidays: {country: XX}", "holidays"),
    ],
)
def test_a_wrong_calendar_file_names_its_problem(tmp_path: Path, text: str, problem: str) -> None:
    base = {
        "name": "office",
        "time_zone": "Europe/London",
        "hours": "{mon: ['09:00-17:00']}",
    }
    key = text.split(":", 1)[0]
    lines = [f"{k}: {v}" for k, v in base.items() if k != key] + [text]
    (tmp_path / "office.calendar.yaml").write_text("\n".join(lines) + "\n")
    found, problems = load_calendars([tmp_path])
    assert found == {}
    assert any(problem in p and p.startswith("office.calendar.yaml") for p in problems), problems


def test_pinned_calendars_carry_resolved_data_only() -> None:
    assert PINNED.holidays[date(2026, 12, 25)] == "Christmas Day"
    assert date(2029, 12, 25) in PINNED.holidays  # three years ahead
    assert isinstance(UK, CalendarDef) and PINNED.time_zone == "Europe/London"
    assert {o for _, o in PINNED.offsets} == {0, 3600}
