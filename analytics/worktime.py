"""Working time over a business calendar, vectorised with numpy.

``schemas.workcal`` answers one question at a time and walks day by day, which is right for
one case's deadlines. Features for thousands of cases (and the history generator) need the
same arithmetic on arrays: ``WorkIndex`` lays the calendar's working spans of a range of years
out as sorted epoch seconds with the working time before each span, so "working time up to t"
and "the instant when w working seconds have passed" are one ``searchsorted`` each.

Built from a ``CalendarDef`` (hours, IANA zone, holidays of the ``holidays`` package and custom
dates) for whole years; the range grows by itself when asked about an instant outside it.
"""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays as holiday_tables
import numpy as np
import numpy.typing as npt

from schemas.calendar import CalendarDef

Floats = npt.NDArray[np.float64]

WEEKDAYS_OFFICE = CalendarDef(
    name="weekdays_office",
    title="Mon-Fri 09:00-17:30 UTC, no holidays (when no calendar is given)",
    time_zone="UTC",
    hours={d: ["09:00-17:30"] for d in ("mon", "tue", "wed", "thu", "fri")},
)


class WorkIndex:
    """Working spans of ``calendar`` as arrays of UTC epoch seconds."""

    starts: Floats
    ends: Floats
    cum: Floats
    cum_end: Floats
    midnights: Floats

    def __init__(
        self, calendar: CalendarDef, first_year: int = 2024, last_year: int = 2028
    ) -> None:
        self.calendar = calendar
        self.zone = ZoneInfo(calendar.time_zone)
        self._week = calendar.week()
        self._build(first_year, last_year)

    def _build(self, first_year: int, last_year: int) -> None:
        self.first_year, self.last_year = first_year, last_year
        closed: set[date] = set(self.calendar.holidays.dates)
        rules = self.calendar.holidays
        if rules.country:
            closed |= set(
                holiday_tables.country_holidays(
                    rules.country, subdiv=rules.subdivision, years=range(first_year, last_year + 1)
                )
            )
        starts: list[float] = []
        ends: list[float] = []
        midnights: list[float] = []
        day = date(first_year, 1, 1)
        self.first_weekday = day.weekday()
        while day.year <= last_year:
            midnights.append(datetime(day.year, day.month, day.day, tzinfo=self.zone).timestamp())
            if day not in closed:
                for a, b in self._week[day.weekday()]:
                    midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
                    starts.append((midnight + timedelta(minutes=a)).timestamp())
                    ends.append((midnight + timedelta(minutes=b)).timestamp())
            day += timedelta(days=1)
        self.midnights = np.asarray(midnights, dtype=np.float64)
        new_starts = np.asarray(starts, dtype=np.float64)
        lengths = np.asarray(ends, dtype=np.float64) - new_starts
        cum = np.concatenate(([0.0], np.cumsum(lengths)[:-1]))  # working s before span i
        if hasattr(self, "cum"):  # grown: every value handed out before keeps its meaning
            cum += self.cum[0] - cum[np.searchsorted(new_starts, self.starts[0])]
        self.starts = new_starts
        self.ends = new_starts + lengths
        self.cum = cum
        self.cum_end = cum + lengths
        self._lists = (
            self.starts.tolist(),
            self.ends.tolist(),
            cum.tolist(),
            self.cum_end.tolist(),
        )
        self.lo = datetime(first_year, 1, 1, tzinfo=UTC).timestamp() + 2 * 86400
        self.hi = datetime(last_year, 12, 31, tzinfo=UTC).timestamp() - 40 * 86400

    def _cover(self, t: Floats) -> None:
        if t.size == 0:
            return
        lo, hi = float(np.min(t)), float(np.max(t))
        if lo < self.lo or hi > self.hi:
            first = min(self.first_year, datetime.fromtimestamp(lo, UTC).year - 1)
            last = max(self.last_year, datetime.fromtimestamp(hi, UTC).year + 1)
            self._build(first, last)

    def worked(self, t: Floats) -> Floats:
        """Working seconds up to each instant, from an origin that stays put when the index
        grows (only differences mean something)."""
        t = np.asarray(t, dtype=np.float64)
        self._cover(t)
        i = np.searchsorted(self.starts, t, side="right") - 1
        i = np.clip(i, 0, None)
        inside = np.clip(t - self.starts[i], 0.0, self.ends[i] - self.starts[i])
        return np.where(t < self.starts[0], self.cum[0], self.cum[i] + inside)

    def instant(self, w: Floats) -> Floats:
        """The first instant at which ``w`` working seconds (from the start of the index) have
        passed: the inverse of ``worked``."""
        w = np.asarray(w, dtype=np.float64)
        j = np.searchsorted(self.cum_end, w, side="left")
        if j.size and int(np.max(j)) >= self.starts.size - 1:
            self._build(self.first_year, self.last_year + 2)
            return self.instant(w)
        return self.starts[j] + (w - self.cum[j])

    def between(self, a: Floats, b: Floats) -> Floats:
        """Working seconds between two instants (zero when ``b`` is not after ``a``)."""
        return np.maximum(self.worked(b) - self.worked(a), 0.0)

    def add(self, t: Floats, seconds: Floats) -> Floats:
        """The instant at which ``seconds`` of working time, counted from ``t``, are used up
        (``t`` itself when the budget is zero)."""
        t = np.asarray(t, dtype=np.float64)
        seconds = np.asarray(seconds, dtype=np.float64)
        out = self.instant(self.worked(t) + seconds)
        return np.where(seconds <= 0, t, np.maximum(out, t))

    def until_open(self, t: Floats) -> Floats:
        """Seconds from each instant to the next working time (0 inside working hours)."""
        t = np.asarray(t, dtype=np.float64)
        w = self.worked(t)
        j = np.searchsorted(self.cum, w, side="right") - 1
        if j.size and int(np.max(j)) >= self.starts.size - 1:
            self._build(self.first_year, self.last_year + 2)
            return self.until_open(t)
        resume = self.starts[j] + (w - self.cum[j])
        return np.maximum(resume - t, 0.0)

    # scalar versions (one instant at a time: the history generator), same answers
    def worked_one(self, t: float) -> float:
        if not self.lo <= t <= self.hi:
            return float(self.worked(np.asarray([t]))[0])
        starts, ends, cum, _ = self._lists
        i = max(bisect.bisect_right(starts, t) - 1, 0)
        return cum[i] + min(max(t - starts[i], 0.0), ends[i] - starts[i])

    def instant_one(self, w: float) -> float:
        starts, _, cum, cum_end = self._lists
        j = bisect.bisect_left(cum_end, w)
        if j >= len(starts) - 1 or j == 0:
            return float(self.instant(np.asarray([w]))[0])
        return starts[j] + (w - cum[j])

    def add_one(self, t: float, seconds: float) -> float:
        if seconds <= 0:
            return t
        return max(self.instant_one(self.worked_one(t) + seconds), t)

    def local(self, t: Floats) -> tuple[npt.NDArray[np.int64], Floats]:
        """Local weekday (Mon=0) and hours since local midnight of each instant."""
        t = np.asarray(t, dtype=np.float64)
        self._cover(t)
        i = np.clip(np.searchsorted(self.midnights, t, side="right") - 1, 0, None)
        weekday = (self.first_weekday + i) % 7
        return weekday.astype(np.int64), (t - self.midnights[i]) / 3600
