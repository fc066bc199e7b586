"""Business calendars on disk (``*.calendar.yaml`` next to the case types), and pinning one for
a case: the holiday dates and the time zone's offsets resolved now, outside any workflow.

A pinned calendar covers one year back and ``PIN_YEARS`` ahead of the moment it is pinned; a
case that outlives that window keeps its weekly hours and last known offset, without holidays.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays as holiday_tables
import yaml
from pydantic import ValidationError

from schemas.calendar import CalendarDef, PinnedCalendar

SUFFIX = ".calendar.yaml"
PIN_YEARS = 3


def calendar_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(f"*{SUFFIX}") if p.is_file())


def load_calendars(folders: Iterable[Path]) -> tuple[dict[str, CalendarDef], list[str]]:
    """Every calendar under ``folders``, and the problems found (each naming its file)."""
    found: dict[str, CalendarDef] = {}
    problems: list[str] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in calendar_files(folder):
            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8"))
                calendar = CalendarDef.model_validate(raw)
            except (OSError, yaml.YAMLError) as exc:
                problems.append(f"{path.name}: cannot read: {exc}")
                continue
            except ValidationError as exc:
                for err in exc.errors():
                    loc = ".".join(str(p) for p in err["loc"]) or "(top)"
                    problems.append(f"{path.name}: {loc}: {err['msg']}")
                continue
            problem = _holiday_problem(calendar)
            if problem:
                problems.append(f"{path.name}: holidays: {problem}")
                continue
            if calendar.name in found:
                problems.append(f"{path.name}: calendar {calendar.name!r} is declared twice")
                continue
            found[calendar.name] = calendar
    return found, problems


def _holiday_problem(calendar: CalendarDef) -> str | None:
    rules = calendar.holidays
    if not rules.country:
        return None
    try:  # the holidays package raises NotImplementedError for a country it has no table for
        holiday_tables.country_holidays(
            rules.country, subdiv=rules.subdivision, years=date.today().year
        )
    except NotImplementedError as exc:
        return str(exc)
    return None


_PINNED: dict[tuple[str, int], PinnedCalendar] = {}


def pin(calendar: CalendarDef, now: datetime) -> PinnedCalendar:
    """``resolve`` once per calendar and year (cases started the same year share it)."""
    key = (calendar.model_dump_json(), now.year)
    if key not in _PINNED:
        _PINNED[key] = resolve(calendar, now)
    return _PINNED[key]


def resolve(calendar: CalendarDef, now: datetime) -> PinnedCalendar:
    """The calendar resolved around ``now``: holiday dates and UTC offset transitions."""
    first_year, last_year = now.year - 1, now.year + PIN_YEARS
    start = datetime(first_year, 1, 1, tzinfo=UTC)
    end = datetime(last_year + 1, 1, 1, tzinfo=UTC)
    named: dict[date, str] = {}
    rules = calendar.holidays
    if rules.country:
        table = holiday_tables.country_holidays(
            rules.country, subdiv=rules.subdivision, years=range(first_year, last_year + 1)
        )
        named.update({day: str(name) for day, name in table.items()})
    for day in rules.dates:
        named.setdefault(day, "closed")
    return PinnedCalendar(
        name=calendar.name,
        time_zone=calendar.time_zone,
        week=calendar.week(),
        holidays=dict(sorted(named.items())),
        offsets=_offsets(ZoneInfo(calendar.time_zone), start, end),
        valid_from=start,
        valid_until=end,
    )


def _offsets(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[int, int]]:
    """(epoch second, offset seconds) at ``start`` and at every change up to ``end``: found
    day by day (a zone never changes twice in a day), then narrowed to the second."""

    def offset(at: datetime) -> int:
        delta = at.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    out = [(int(start.timestamp()), offset(start))]
    at = start
    step = timedelta(days=1)
    while at < end:
        nxt = at + step
        if offset(nxt) != out[-1][1]:
            lo, hi = at, nxt  # offset(lo) is the old one, offset(hi) the new
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (mid, hi) if offset(mid) == out[-1][1] else (lo, mid)
            out.append((int(hi.timestamp()), offset(hi)))
        at = nxt
    return out
