"""Case history: one row per stage interval of a finished case, in the one CSV format that
``onboarding history import/export``, the ETA model, breach prediction and what-if share.

Columns, exactly and in this order::

    case_ref, case_type, client_type, tier, country, service_requirements,
    documents_submitted_at_creation, created_at, stage, entered_at, exited_at, outcome,
    breached

- ``service_requirements``: semicolon-separated codes (``fatca;mifid_ii``), may be empty.
- times: ISO 8601 with an offset (``2026-03-02T09:15:00+00:00``); naive times are refused.
- ``outcome``: completed | sent_back | skipped | cancelled.
- ``breached`` and ``documents_submitted_at_creation``: true | false.

``read_csv`` checks every row and reports problems with their line numbers (the header is
line 1); callers load nothing unless the whole file is clean.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TextIO

COLUMNS = (
    "case_ref",
    "case_type",
    "client_type",
    "tier",
    "country",
    "service_requirements",
    "documents_submitted_at_creation",
    "created_at",
    "stage",
    "entered_at",
    "exited_at",
    "outcome",
    "breached",
)
OUTCOMES = ("completed", "sent_back", "skipped", "cancelled")
CREATION_COLUMNS = COLUMNS[:8]
"""What is known when a case opens: the ETA's input (``onboarding eta predict``)."""

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
_REQUIREMENT = re.compile(r"^[a-z0-9_]{1,40}$")  # regulatory codes may start with a digit (5amld)
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-/.]{0,63}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_BOOL = {"true": True, "false": False}


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What is known about a case when it opens."""

    case_ref: str
    case_type: str
    client_type: str
    tier: str
    country: str
    service_requirements: tuple[str, ...]
    documents_submitted_at_creation: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StageInterval:
    """One visit of one stage by one finished case."""

    case_ref: str
    case_type: str
    client_type: str
    tier: str
    country: str
    service_requirements: tuple[str, ...]
    documents_submitted_at_creation: bool
    created_at: datetime
    stage: str
    entered_at: datetime
    exited_at: datetime
    outcome: str
    breached: bool

    @property
    def facts(self) -> CaseFacts:
        return CaseFacts(*(getattr(self, f.name) for f in fields(CaseFacts)))

    @property
    def seconds(self) -> float:
        return (self.exited_at - self.entered_at).total_seconds()

    def as_row(self) -> list[str]:
        return [
            self.case_ref,
            self.case_type,
            self.client_type,
            self.tier,
            self.country,
            ";".join(self.service_requirements),
            "true" if self.documents_submitted_at_creation else "false",
            self.created_at.isoformat(),
            self.stage,
            self.entered_at.isoformat(),
            self.exited_at.isoformat(),
            self.outcome,
            "true" if self.breached else "false",
        ]


@dataclass(frozen=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class _RowError(ValueError):
    pass


def _time(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _RowError(f"{name} {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise _RowError(f"{name} {value!r} has no UTC offset")
    return parsed


def _bool(value: str, name: str) -> bool:
    try:
        return _BOOL[value.strip().lower()]
    except KeyError:
        raise _RowError(f"{name} must be true or false, not {value!r}") from None


def _key(value: str, name: str) -> str:
    if not _KEY.match(value):
        raise _RowError(f"{name} {value!r} is not a lower_snake_case key")
    return value


def _requirement(value: str) -> str:
    if not _REQUIREMENT.match(value):
        raise _RowError(f"service_requirements {value!r} is not a requirement code")
    return value


def parse_facts(row: dict[str, str]) -> CaseFacts:
    """The creation columns of one CSV row (``ValueError`` naming the bad column)."""
    ref = row["case_ref"].strip()
    if not _REF.match(ref):
        raise _RowError(f"case_ref {ref!r} is not a case reference")
    country = row["country"].strip().upper()
    if not _COUNTRY.match(country):
        raise _RowError(f"country {row['country']!r} is not an ISO 3166 alpha-2 code")
    needs = tuple(
        _requirement(part.strip())
        for part in row["service_requirements"].split(";")
        if part.strip()
    )
    return CaseFacts(
        case_ref=ref,
        case_type=_key(row["case_type"].strip(), "case_type"),
        client_type=_key(row["client_type"].strip(), "client_type"),
        tier=_key(row["tier"].strip(), "tier"),
        country=country,
        service_requirements=needs,
        documents_submitted_at_creation=_bool(
            row["documents_submitted_at_creation"], "documents_submitted_at_creation"
        ),
        created_at=_time(row["created_at"].strip(), "created_at"),
    )


def parse_interval(row: dict[str, str]) -> StageInterval:
    facts = parse_facts(row)
    entered = _time(row["entered_at"].strip(), "entered_at")
    exited = _time(row["exited_at"].strip(), "exited_at")
    if exited < entered:
        raise _RowError("exited_at is before entered_at")
    if entered < facts.created_at:
        raise _RowError("entered_at is before created_at")
    outcome = row["outcome"].strip()
    if outcome not in OUTCOMES:
        raise _RowError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    return StageInterval(
        **{f.name: getattr(facts, f.name) for f in fields(CaseFacts)},
        stage=_key(row["stage"].strip(), "stage"),
        entered_at=entered,
        exited_at=exited,
        outcome=outcome,
        breached=_bool(row["breached"], "breached"),
    )


def _rows(source: TextIO, wanted: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(source)
    header = tuple(h.strip() for h in (reader.fieldnames or ()))
    if header[: len(wanted)] != wanted or (wanted == COLUMNS and header != COLUMNS):
        raise ValueError(f"line 1: the header must be exactly: {', '.join(wanted)}")
    for row in reader:
        if None in row or any(v is None for v in row.values()):
            yield reader.line_num, {}
            continue
        yield reader.line_num, row


def read_csv(source: TextIO) -> tuple[list[StageInterval], list[Problem]]:
    """Every row, or the problems (all of them, with line numbers): never part of a file.

    Also refused: the same (case_ref, stage, entered_at) twice in one file, and a case whose
    rows disagree on its creation facts."""
    try:
        rows = list(_rows(source, COLUMNS))
    except ValueError as e:
        return [], [Problem(1, str(e).removeprefix("line 1: "))]
    out: list[StageInterval] = []
    problems: list[Problem] = []
    seen: dict[tuple[str, str, datetime], int] = {}
    facts: dict[str, tuple[CaseFacts, int]] = {}
    for line, row in rows:
        if not row:
            problems.append(Problem(line, f"expected {len(COLUMNS)} columns"))
            continue
        try:
            interval = parse_interval(row)
        except (_RowError, KeyError) as e:
            problems.append(Problem(line, str(e)))
            continue
        key = (interval.case_ref, interval.stage, interval.entered_at)
        if key in seen:
            problems.append(Problem(line, f"the same stage interval as line {seen[key]}"))
            continue
        seen[key] = line
        known = facts.setdefault(interval.case_ref, (interval.facts, line))
        if known[0] != interval.facts:
            problems.append(
                Problem(
                    line, f"case {interval.case_ref}'s creation facts differ from line {known[1]}"
                )
            )
            continue
        out.append(interval)
    return (out, []) if not problems else ([], problems)


def read_facts_csv(source: TextIO) -> tuple[list[CaseFacts], list[Problem]]:
    """One case per row, creation columns only (more columns are ignored)."""
    try:
        rows = list(_rows(source, CREATION_COLUMNS))
    except ValueError as e:
        return [], [Problem(1, str(e).removeprefix("line 1: "))]
    out: list[CaseFacts] = []
    problems: list[Problem] = []
    for line, row in rows:
        try:
            out.append(parse_facts(row))
        except (_RowError, KeyError) as e:
            problems.append(Problem(line, str(e) if row else "missing columns"))
    return (out, []) if not problems else ([], problems)


def write_csv(target: TextIO, intervals: Iterable[StageInterval]) -> int:
    writer = csv.writer(target, lineterminator="\n")
    writer.writerow(COLUMNS)
    n = 0
    for interval in intervals:
        writer.writerow(interval.as_row())
        n += 1
    return n


def to_text(intervals: Iterable[StageInterval]) -> str:
    buffer = io.StringIO()
    write_csv(buffer, intervals)
    return buffer.getvalue()
