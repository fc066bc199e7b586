"""``onboarding history import PATH`` / ``onboarding history export PATH``: case history as CSV.

The format is ``schemas.history`` (docs/history.md): one row per stage interval of a
finished case, header exactly ``case_ref, case_type, ..., breached``.

import   checks the whole file first. Any problem: every one is printed to stderr with its
         line number, the exit code is 1, and nothing is loaded. A clean file is inserted
         in one transaction; a stage interval already held (same case_ref, stage,
         entered_at) is skipped, so importing the same file twice adds nothing.
export   writes the history held (recorded and imported), ordered by case then time,
         streaming. ``--case-type`` and ``--since`` (cases created on or after) narrow it.

``-`` as PATH reads stdin / writes stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from schemas.history import StageInterval, read_csv
from store.db import SessionFactory
from store.history import export_csv, insert_intervals


def parse_since(value: str) -> datetime:
    """A date (``2026-01-01``: midnight UTC) or an ISO 8601 time (naive means UTC)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date (YYYY-MM-DD) or ISO 8601 time"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def read_history(source: TextIO, *, err: TextIO) -> list[StageInterval] | None:
    """Every stage interval of a clean file; else the problems, each with its line number,
    printed to ``err`` and None (nothing of the file is to be loaded)."""
    intervals, problems = read_csv(source)
    if not problems:
        return intervals
    for problem in problems:
        print(str(problem), file=err)
    print(f"{len(problems)} problem(s): nothing loaded", file=err)
    return None


async def import_history(
    sessions: SessionFactory, intervals: list[StageInterval], *, out: TextIO
) -> int:
    """Insert a clean file's intervals in one transaction; the number new."""
    async with sessions.begin() as session:
        new = await insert_intervals(session, intervals)
    print(
        f"{len(intervals)} stage intervals read, {new} new, {len(intervals) - new} already loaded",
        file=out,
    )
    return new


async def export_history(
    sessions: SessionFactory,
    target: TextIO,
    *,
    case_type: str | None = None,
    since: datetime | None = None,
) -> int:
    """Write the CSV to ``target``; the number of stage intervals written."""
    async with sessions() as session:
        return await export_csv(session, target, case_type=case_type, since=since)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "history",
        help="import or export case history (stage intervals) as CSV",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="history_command", required=True)
    imp = sub.add_parser("import", help="load a history CSV (all or nothing, idempotent)")
    imp.add_argument("path", metavar="PATH", help="the CSV file ('-' for stdin)")
    exp = sub.add_parser("export", help="write the history held as CSV")
    exp.add_argument("path", metavar="PATH", help="the CSV file to write ('-' for stdout)")
    exp.add_argument("--case-type", metavar="T", help="only cases of this case type")
    exp.add_argument(
        "--since",
        metavar="DATE",
        type=parse_since,
        help="only cases created on or after (YYYY-MM-DD, UTC, or an ISO 8601 time)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, *, database_url: str | None = None) -> int:
    if args.history_command == "import":
        return _import(args.path, database_url)
    return _export(args.path, args.case_type, args.since, database_url)


def main(argv: Sequence[str] | None = None, *, database_url: str | None = None) -> int:
    """``onboarding history ...`` on its own (tests; before it is wired into cli.main)."""
    parser = argparse.ArgumentParser(prog="onboarding")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv), database_url=database_url)


def _import(path: str, database_url: str | None) -> int:
    # The whole file is checked before any database is touched.
    if path == "-":
        intervals = read_history(sys.stdin, err=sys.stderr)
    else:
        try:
            # utf-8-sig: a byte-order mark (spreadsheets write one) is not part of the header
            with open(path, encoding="utf-8-sig", newline="") as source:
                intervals = read_history(source, err=sys.stderr)
        except (OSError, UnicodeDecodeError) as e:
            print(f"cannot read {path}: {e}", file=sys.stderr)
            return 1
    if intervals is None:
        return 1
    loaded = intervals
    asyncio.run(_with_database(database_url, lambda s: import_history(s, loaded, out=sys.stdout)))
    return 0


def _export(
    path: str, case_type: str | None, since: datetime | None, database_url: str | None
) -> int:
    if path == "-":
        asyncio.run(
            _with_database(
                database_url,
                lambda s: export_history(s, sys.stdout, case_type=case_type, since=since),
            )
        )
        return 0
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    try:
        # written beside the target, then renamed: a failed export leaves no half file
        with open(partial, "w", encoding="utf-8", newline="") as out:
            n = asyncio.run(
                _with_database(
                    database_url,
                    lambda s: export_history(s, out, case_type=case_type, since=since),
                )
            )
        os.replace(partial, target)
    except OSError as e:
        partial.unlink(missing_ok=True)
        print(f"cannot write {path}: {e}", file=sys.stderr)
        return 1
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    print(f"{n} stage intervals written to {path}")
    return 0


async def _with_database(
    database_url: str | None, work: Callable[[SessionFactory], Awaitable[int]]
) -> int:
    """Run ``work`` against the database other commands use (DATABASE_URL, else the
    embedded Postgres under the data dir)."""
    from store.db import make_engine, make_session_factory

    server = None
    if database_url is None:
        from core.database import resolve_database_url
        from core.settings import get_settings

        database_url, server = resolve_database_url(get_settings())
    engine = make_engine(database_url, pool_size=1)
    try:
        return await work(make_session_factory(engine))
    finally:
        await engine.dispose()
        del server  # an embedded Postgres (if we started one) is kept up until here
