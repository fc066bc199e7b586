"""Business calendars: working hours per weekday, a time zone, holidays.

Two shapes:

- ``CalendarDef`` is what a person writes (``playbooks/case_types/*.calendar.yaml``): hours as
  ``"09:00-17:30"`` per weekday, an IANA time zone, and holidays as a country/subdivision of
  the ``holidays`` package plus custom dates.
- ``PinnedCalendar`` is what a case carries in its workflow input: the same hours in minutes,
  the holiday *dates* already resolved, and the time zone's UTC offsets as a list of
  transitions. Resolving happens once, outside the workflow (``playbooks.calendars.pin``), so
  the workflow's working-time arithmetic (``schemas.workcal``) never reads tz data or
  a holiday table: the same input gives the same deadlines on every worker and every replay.
"""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^(?P<a>[01]\d|2[0-3]):(?P<b>[0-5]\d)-(?P<c>[01]\d|2[0-4]):(?P<d>[0-5]\d)$")
NAME = r"^[a-z][a-z0-9_]{0,59}$"


def parse_span(text: str) -> tuple[int, int]:
    """``"09:00-17:30"`` as minutes from midnight, (540, 1050)."""
    m = _SPAN.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not HH:MM-HH:MM")
    start = int(m["a"]) * 60 + int(m["b"])
    end = int(m["c"]) * 60 + int(m["d"])
    if end > 24 * 60 or end <= start:
        raise ValueError(f"{text!r}: the end must be after the start, within the day")
    return start, end


class HolidayRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="ISO 3166")
    subdivision: str | None = Field(default=None, max_length=10, description="e.g. ENG, CA")
    dates: list[date] = Field(default_factory=list, max_length=500, description="Custom closures")

    @model_validator(mode="after")
    def _subdivision_needs_country(self) -> HolidayRules:
        if self.subdivision and not self.country:
            raise ValueError("a subdivision needs its country")
        return self


class CalendarDef(BaseModel):
    """A named working calendar, as declared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    title: str = Field(default="", max_length=200)
    time_zone: str = Field(max_length=64, description="IANA name, e.g. Europe/London")
    hours: dict[str, list[str]] = Field(description='{"mon": ["09:00-17:30"], ...}')
    holidays: HolidayRules = Field(default_factory=HolidayRules)

    @field_validator("hours")
    @classmethod
    def _check_hours(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(WEEKDAYS))
        if unknown:
            raise ValueError(f"unknown weekday(s) {unknown}; use {', '.join(WEEKDAYS)}")
        for day, spans in value.items():
            parsed = sorted(parse_span(s) for s in spans)
            for (_, end), (start, _) in itertools.pairwise(parsed):
                if start < end:
                    raise ValueError(f"{day}: working hours overlap")
        if not any(value.get(d) for d in WEEKDAYS):
            raise ValueError("a calendar needs some working hours")
        return value

    @field_validator("time_zone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def week(self) -> list[list[tuple[int, int]]]:
        """Monday..Sunday, each day's spans in minutes from local midnight, in order."""
        return [sorted(parse_span(s) for s in self.hours.get(day, [])) for day in WEEKDAYS]


class PinnedCalendar(BaseModel):
    """A calendar resolved for one case: pure data, enough for deterministic arithmetic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    time_zone: str
    week: list[list[tuple[int, int]]] = Field(min_length=7, max_length=7)
    holidays: dict[date, str] = Field(default_factory=dict, description="Local date -> name")
    offsets: list[tuple[int, int]] = Field(
        min_length=1,
        description="(UTC epoch second from which, UTC offset in seconds), ascending; the "
        "first applies before it too, the last after the pinned window",
    )
    valid_from: datetime
    valid_until: datetime
    """Holidays are known inside this window; beyond it only weekends and hours count."""
