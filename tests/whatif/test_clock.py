"""``WorkingClock`` (the what-if's working time, two binary searches per interval) agrees with
the engine's own arithmetic (``schemas.workcal.working``), and ``pin_range`` covers a
history longer than one pinned calendar."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, timedelta

import pytest

from analytics.whatif import WorkingClock, pin_range
from playbooks.calendars import load_calendars
from playbooks.registry import DEFAULT_FOLDER
from schemas.calendar import CalendarDef
from schemas.workcal import working

UK = load_calendars([DEFAULT_FOLDER])[0]["uk_business_hours"]
SPLIT = CalendarDef(
    name="split_shifts",
    time_zone="America/New_York",
    hours={
        "mon": ["00:00-02:30", "08:00-12:00", "13:00-24:00"],
        "wed": ["01:00-03:00"],
        "sat": ["00:00-24:00"],
    },
    holidays={"country": "US", "dates": [date(2026, 11, 2)]},
)


@pytest.mark.parametrize("calendar", [UK, SPLIT], ids=lambda c: c.name)
def test_the_clock_agrees_with_the_engine(calendar: CalendarDef) -> None:
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 6, 30, tzinfo=UTC)
    pinned = pin_range(calendar, start, end)
    clock = WorkingClock(pinned, start, end)
    rng = random.Random(11)
    span = int((end - start).total_seconds())
    for _ in range(400):
        a = start + timedelta(seconds=rng.randrange(span - 30 * 86400))
        b = a + timedelta(seconds=rng.choice([rng.randrange(7200), rng.randrange(20 * 86400)]))
        expected = working(pinned, a, b).total_seconds()
        assert clock.between(a.timestamp(), b.timestamp()) == pytest.approx(expected, abs=1e-6)


def test_dst_changes_and_bank_holidays() -> None:
    """Europe/London: 29 March 2026 the clocks go forward; Good Friday and Easter Monday."""
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 30, tzinfo=UTC)
    clock = WorkingClock(pin_range(UK, start, end), start, end)

    def hours(a: str, b: str) -> float:
        at = datetime.fromisoformat(a).timestamp()
        to = datetime.fromisoformat(b).timestamp()
        return clock.between(at, to) / 3600

    # Friday in GMT (09:00-17:30 UTC), Monday in BST (09:00 London is 08:00 UTC)
    assert hours("2026-03-27T09:00:00+00:00", "2026-03-30T08:00:00+00:00") == 8.5
    assert hours("2026-03-27T09:00:00+00:00", "2026-03-30T09:00:00+00:00") == 9.5
    assert hours("2026-03-30T08:00:00+00:00", "2026-03-30T16:30:00+00:00") == 8.5  # BST Monday
    assert hours("2026-04-02T16:30:00+00:00", "2026-04-07T08:00:00+00:00") == 0  # Easter
    assert hours("2026-04-07T10:00:00+00:00", "2026-04-07T10:00:00+00:00") == 0
    assert hours("2026-04-07T11:00:00+00:00", "2026-04-07T10:00:00+00:00") == 0


def test_pin_range_covers_a_long_history() -> None:
    """A pin knows one year back and three ahead: eight years are pinned in pieces."""
    start, end = datetime(2019, 2, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    pinned = pin_range(UK, start, end)
    assert pinned.valid_from <= start and pinned.valid_until >= end
    assert date(2019, 12, 25) in pinned.holidays and date(2026, 12, 25) in pinned.holidays
    assert date(2022, 6, 3) in pinned.holidays  # the Platinum Jubilee, in the middle piece
    offsets = pinned.offsets
    assert [t for t, _ in offsets] == sorted(t for t, _ in offsets)
    assert all(a[1] != b[1] for a, b in itertools.pairwise(offsets))
    clock = WorkingClock(pinned, start, end)
    a = datetime(2019, 12, 24, 9, 0, tzinfo=UTC).timestamp()
    b = datetime(2019, 12, 27, 9, 0, tzinfo=UTC).timestamp()
    assert clock.between(a, b) == 8.5 * 3600  # Christmas and Boxing Day are closed
    short = pin_range(UK, datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    assert short.valid_from.year == 2026 and short.valid_until.year == 2031
