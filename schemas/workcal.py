"""Working-time arithmetic over a ``PinnedCalendar``: pure, deterministic, replay-safe.

Everything is in UTC ``datetime``s on the outside. Inside, each local day's working spans are
turned into UTC intervals with the calendar's pinned offsets, so no tz database is read here.
``None`` as the calendar means 24/7: wall-clock arithmetic, exactly what the engine did before
calendars existed.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from schemas.calendar import PinnedCalendar

MAX_DAYS = 3660
"""How far ahead a deadline is searched (ten years): a calendar always has working hours, so
this only bounds a budget far larger than any SLA."""


def _offset_at(cal: PinnedCalendar, utc: datetime) -> int:
    epoch = int(utc.timestamp())
    starts = [t for t, _ in cal.offsets]
    i = bisect.bisect_right(starts, epoch) - 1
    return cal.offsets[max(i, 0)][1]


def to_local(cal: PinnedCalendar, utc: datetime) -> datetime:
    """Naive local wall time of a UTC instant."""
    return (utc + timedelta(seconds=_offset_at(cal, utc))).replace(tzinfo=None)


def to_utc(cal: PinnedCalendar, local: datetime) -> datetime:
    """The UTC instant of a naive local time (the offset in force then; in a DST gap or
    overlap, the offset from before the change)."""
    guess = local.replace(tzinfo=UTC)
    first = guess - timedelta(seconds=_offset_at(cal, guess))
    return guess - timedelta(seconds=_offset_at(cal, first))


def is_holiday(cal: PinnedCalendar, day: date) -> bool:
    return day in cal.holidays


def spans(cal: PinnedCalendar, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals (UTC) from the local day of ``start`` on, in order, for up to
    ``MAX_DAYS`` days; holidays are skipped."""
    day = to_local(cal, start).date()
    for _ in range(MAX_DAYS):
        if not is_holiday(cal, day):
            for a, b in cal.week[day.weekday()]:
                midnight = datetime(day.year, day.month, day.day)
                yield (
                    to_utc(cal, midnight + timedelta(minutes=a)),
                    to_utc(cal, midnight + timedelta(minutes=b)),
                )
        day += timedelta(days=1)


def working(cal: PinnedCalendar | None, start: datetime, end: datetime) -> timedelta:
    """Working time between two instants (zero when ``end`` is not after ``start``)."""
    if end <= start:
        return timedelta(0)
    if cal is None:
        return end - start
    total = timedelta(0)
    for s, e in spans(cal, start):
        if s >= end:
            break
        lo, hi = max(s, start), min(e, end)
        if hi > lo:
            total += hi - lo
    return total


def add(cal: PinnedCalendar | None, start: datetime, budget: timedelta) -> datetime:
    """The instant at which ``budget`` of working time, counted from ``start``, is used up.

    A budget of zero is due at ``start`` itself (not at the next opening), so a deadline that
    has come is never pushed into the future.
    """
    if budget <= timedelta(0) or cal is None:
        return start + max(budget, timedelta(0))
    left = budget
    for s, e in spans(cal, start):
        if e <= start:
            continue
        lo = max(s, start)
        if e - lo >= left:
            return lo + left
        left -= e - lo
    raise ValueError(f"no working time within {MAX_DAYS} days in calendar {cal.name}")


@dataclass(frozen=True)
class Skipped:
    """A stretch of non-working days between two instants, for the explanation."""

    day: date
    why: str  # "weekend" | "holiday: <name>" | "no working hours"


def skipped_days(cal: PinnedCalendar, start: datetime, end: datetime) -> list[Skipped]:
    """Local days between the two instants on which no working time counts, and why."""
    out: list[Skipped] = []
    day, last = to_local(cal, start).date(), to_local(cal, end).date()
    while day <= last and len(out) < 400:
        if day in cal.holidays:
            out.append(Skipped(day, f"holiday: {cal.holidays[day]}"))
        elif not cal.week[day.weekday()]:
            out.append(Skipped(day, "weekend" if day.weekday() >= 5 else "no working hours"))
        day += timedelta(days=1)
    return out
