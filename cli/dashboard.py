"""``onboarding dashboard rollup [--since DATE]``: bring the dashboard's daily roll-up up to date
now, as the hourly ``dashboard-rollup`` schedule does (docs/dashboard.md).

Recomputes, from raw rows, every UTC day from the earliest one whose facts changed since the
last refresh (``--since DATE``: from that day at the latest, changed or not) up to yesterday,
then moves the watermark to today. The first run builds the roll-up from the first day.
Idempotent; a run while another is going does nothing and says so (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import date

from cli.eta import with_database


def date_arg(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _rollup(args: argparse.Namespace, database_url: str | None) -> int:
    from store.dashboard_rollup import refresh

    report = asyncio.run(with_database(database_url, lambda s: refresh(s, since=args.since)))
    if not report.refreshed:
        print(f"nothing done: {report.reason}", file=sys.stderr)
        return 1
    what = (
        f"recomputed {report.days} day(s) from {report.first_day}"
        if report.first_day is not None
        else "nothing to recompute"
    )
    print(
        f"dashboard roll-up: {what} ({'first build; ' if report.full else ''}"
        f"{report.dirty_days} changed day(s) taken in); rolled up to {report.rolled_until} "
        f"(exclusive); {report.stage_rows} stage rows, {report.case_rows} case rows, "
        f"{report.value_rows} value rows written in {report.seconds:.1f} s"
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="the SLA dashboard's daily roll-up: rollup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="dashboard_command", required=True)
    rollup = sub.add_parser("rollup", help="refresh the daily roll-up now")
    rollup.add_argument(
        "--since",
        type=date_arg,
        metavar="DATE",
        help="recompute from this UTC day (YYYY-MM-DD) even if nothing changed",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, *, database_url: str | None = None) -> int:
    return _rollup(args, database_url)


def main(argv: Sequence[str] | None = None, *, database_url: str | None = None) -> int:
    """``onboarding dashboard ...`` on its own (tests)."""
    parser = argparse.ArgumentParser(prog="onboarding")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv), database_url=database_url)
