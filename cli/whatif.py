"""``onboarding whatif --case-type T --playbook DRAFT.yaml [--since DATE] [--history CSV]``:
re-run the recorded stage timings of past cases against a draft case type.

The draft is validated exactly as the registry validates a case type file, next to the case
types in service (an invalid draft prints its problems and exits 1). The history is the
``history_intervals`` table (cases of T created on or after ``--since``), or a history CSV
(``--history``, the format of ``onboarding history export``). Prints the cases whose route or
SLA outcome would change (``--limit``, default 50, 0 for all; the total is always given) and
the totals per stage, breaches before -> after; ``--json`` for machine output. A pure
computation over history (``analytics.whatif``): no live case or workflow is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from analytics.whatif import (
    StageTotals,
    WhatIfReport,
    check_draft,
    duration,
    pin_calendars,
    whatif,
)
from core.settings import Settings, get_settings
from schemas.history import StageInterval, read_csv

EXIT_OK = 0
EXIT_INVALID = 1  # an invalid draft, an unreadable history, case types that do not load
EXIT_USAGE = 2


def parse_since(value: str) -> datetime:
    """A date (``2026-01-01``: midnight UTC) or an ISO 8601 time (naive means UTC)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date (YYYY-MM-DD) or ISO 8601 time"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "whatif",
        help="replay past cases' stage timings against a draft case type",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--case-type", required=True, metavar="T", help="the case type")
    parser.add_argument(
        "--playbook", required=True, type=Path, metavar="DRAFT.yaml", help="the draft case type"
    )
    parser.add_argument(
        "--since",
        type=parse_since,
        metavar="DATE",
        help="only cases created on or after (YYYY-MM-DD, midnight UTC, or an ISO 8601 time)",
    )
    parser.add_argument(
        "--history",
        type=Path,
        metavar="CSV",
        help="read the history from a CSV file instead of the history_intervals table",
    )
    parser.add_argument(
        "--calendars",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of draft *.calendar.yaml files, besides the case type folders' own "
        "(repeatable; a name declared twice is a problem)",
    )
    parser.add_argument(
        "--limit", type=int, default=50, help="changed cases to list (default 50; 0: all)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def main(argv: list[str] | None = None, **kwargs: Any) -> int:
    """``onboarding whatif ...`` on its own (tests; before it is wired into cli.main)."""
    parser = argparse.ArgumentParser(prog="onboarding")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv), **kwargs)


def run(
    args: argparse.Namespace,
    *,
    settings: Settings | None = None,
    database_url: str | None = None,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = sys.stderr
    if args.limit < 0:
        print("--limit is a number of cases, 0 for all", file=err)
        return EXIT_USAGE
    from api.deps import load_case_types
    from playbooks.registry import CaseTypeError

    settings = settings or get_settings()
    try:
        registry = load_case_types(settings)
    except CaseTypeError as e:
        print(f"the case types in service do not load, so no draft can be checked:\n{e}", file=err)
        return EXIT_INVALID
    check = check_draft(
        args.playbook,
        registry,
        expected_name=args.case_type,
        staff_roles=set(settings.staff_directory),
        calendar_folders=args.calendars,
    )
    if check.case_type is None:
        count = len(check.problems)
        print(f"The draft is not valid ({count} problem{'s' if count != 1 else ''}):", file=out)
        for problem in check.problems:
            print(f"  - {problem}", file=out)
        return EXIT_INVALID
    draft = check.case_type

    if args.history is not None:
        intervals = _read_history(args.history, err)
        if intervals is None:
            return EXIT_INVALID
        source = str(args.history)
        intervals = [
            iv
            for iv in intervals
            if iv.case_type == draft.name and (args.since is None or iv.created_at >= args.since)
        ]
    else:
        intervals = asyncio.run(_load(draft.name, args.since, settings, database_url))
        source = "history_intervals"

    current = registry.get(draft.name) if draft.name in registry else None
    calendars = pin_calendars(draft, check.calendars, intervals)
    report = whatif(intervals, draft, calendars, current=current)
    limit = args.limit or None
    if args.json:
        data = {
            "source": source,
            "since": args.since.isoformat() if args.since else None,
            **report.as_dict(limit),
        }
        json.dump(data, out, indent=2)
        out.write("\n")
    else:
        out.write(format_report(report, limit=limit, source=source, since=args.since))
    return EXIT_OK


def _read_history(path: Path, err: TextIO) -> list[StageInterval] | None:
    try:
        # utf-8-sig: a byte-order mark (spreadsheets write one) is not part of the header
        with open(path, encoding="utf-8-sig", newline="") as source:
            intervals, problems = read_csv(source)
    except (OSError, UnicodeDecodeError) as e:
        print(f"cannot read {path}: {e}", file=err)
        return None
    if problems:
        print(f"{path}: {len(problems)} problem(s), nothing was read:", file=err)
        for problem in problems[:50]:
            print(f"  - {problem}", file=err)
        if len(problems) > 50:
            print(f"  … and {len(problems) - 50} more", file=err)
        return None
    return intervals


async def _load(
    case_type: str, since: datetime | None, settings: Settings, database_url: str | None
) -> list[StageInterval]:
    """Cases of the type from the history table (DATABASE_URL, else the embedded Postgres)."""
    from store.db import make_engine, make_session_factory
    from store.history import load

    server = None
    if database_url is None:
        from core.database import resolve_database_url

        database_url, server = resolve_database_url(settings)
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_session_factory(engine)() as session:
            return await load(session, case_type=case_type, since=since)
    finally:
        await engine.dispose()
        del server  # an embedded Postgres (if we started one) is kept up until here


# ----------------------------------------------------------------------------- text output
def _sla(seconds: float | None) -> str:
    return duration(seconds) if seconds is not None else "none"


def _stage_row(t: StageTotals, has_current: bool) -> list[str]:
    after_sla = _sla(t.sla_after) if t.in_draft else "removed"
    after_calendar = (t.calendar_after or "24/7") if t.in_draft else "-"
    sla, calendar = after_sla, after_calendar
    if has_current:
        before_sla, before_calendar = _sla(t.sla_before), t.calendar_before or "24/7"
        if before_sla != after_sla:
            sla = f"{before_sla} → {after_sla}"
        if before_calendar != after_calendar and t.in_draft:
            calendar = f"{before_calendar} → {after_calendar}"
    moved = f"+{t.newly_breached} -{t.no_longer_breached}"
    route = []
    if t.cases_entering:
        route.append(f"{t.cases_entering} would enter")
    if t.cases_skipping:
        route.append(f"{t.cases_skipping} would skip")
    return [
        t.stage,
        f"{t.intervals}"
        + (f" ({t.intervals_after} run)" if t.intervals_after != t.intervals else ""),
        f"{t.breaches_before} → {t.breaches_after}",
        moved,
        sla,
        calendar,
        ", ".join(route) or "—",
    ]


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def format_report(
    report: WhatIfReport,
    *,
    limit: int | None = 50,
    source: str = "history_intervals",
    since: datetime | None = None,
) -> str:
    """The report as a person reads it in a terminal."""
    lines: list[str] = []
    against = (
        f" against {report.current_version} in service"
        if report.current_version is not None
        else " (no such case type in service)"
    )
    lines.append(f"What-if: {report.case_type}, draft {report.draft_version}{against}")
    span = ""
    if report.first_created and report.last_created:
        span = (
            f", created {report.first_created.date().isoformat()} … "
            f"{report.last_created.date().isoformat()}"
        )
    window = f" since {since.isoformat()}" if since else ""
    lines.append(
        f"History: {report.cases} case(s), {report.intervals} stage interval(s){span} "
        f"(from {source}{window})"
    )
    lines.append("")
    lines.append(
        f"Changed: {report.cases_changed} of {report.cases} case(s): "
        f"route {report.cases_route_changed}, SLA outcome {report.cases_sla_changed} "
        f"({report.intervals_sla_changed} interval(s))"
    )
    shown = report.changed if limit is None else report.changed[:limit]
    if shown:
        rows: list[list[str]] = []
        for case in shown:
            for i, change in enumerate(case.changes):
                rows.append([case.case_ref if i == 0 else "", change.describe()])
        lines.extend(_table(["case", "what would change"], rows, set()))
        if len(shown) < len(report.changed):
            lines.append(
                f"… {len(report.changed) - len(shown)} more changed case(s) "
                "(--limit 0 lists all; --json for machine output)"
            )
    if not report.cases:
        lines.extend(["", *(f"Note: {note}" for note in report.notes)])
        return "\n".join(lines) + "\n"
    lines.append("")
    lines.append("Per stage (breaches before → after; moved: +newly breached -no longer breached):")
    has_current = report.current_version is not None
    header = ["stage", "intervals", "breaches", "moved", "SLA", "calendar", "route"]
    lines.extend(_table(header, [_stage_row(t, has_current) for t in report.stages], {1, 2, 3}))
    if report.not_evaluable:
        lines.append("")
        lines.append(
            f"Route not evaluable for {report.cases_not_evaluable} case(s) "
            "(a condition reads what a past case does not record; not guessed):"
        )
        for item in report.not_evaluable:
            lines.append(f"  - {item.stage}: reads {', '.join(item.paths)} ({item.cases} case(s))")
    if report.notes:
        lines.append("")
        lines.extend(f"Note: {note}" for note in report.notes)
    return "\n".join(lines) + "\n"
