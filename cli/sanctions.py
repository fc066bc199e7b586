"""``onboarding sanctions load PATH [--source NAME] [--kind KIND]``: put a new sanctions list in
service and re-screen every client against it (docs/sanctions-monitoring.md).

PATH is one list file (an OFAC ``sdn.csv`` or ``alt.csv``, or an OpenSanctions
``targets.simple.csv``; the kind is read from the name or the content, or given with --kind),
or a folder holding any of those three. Each file is copied atomically over the path the
worker screens against (``SANCTIONS_SDN_PATH``, ``SANCTIONS_ALT_PATH``,
``SANCTIONS_OPENSANCTIONS_PATH``); the version of the lists the worker will then read is
recorded, and ``RescreenClients`` starts as ``rescreen-<version>``. Loading the same version
again starts nothing (exit 0, and says so). A file that is not a list, or has no entries, is
refused before anything is installed (exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from temporalio.client import Client

from core.settings import Settings, get_settings
from integrations.sanctions.catalog import ListFileError, ListKind, source_files
from schemas.monitoring import LoadResult
from store.db import SessionFactory


async def load(
    *,
    settings: Settings,
    path: Path,
    source: str | None,
    kind: ListKind | None = None,
    sessions: SessionFactory | None = None,
    temporal: Client | None = None,
) -> LoadResult:
    """Install, record, start: ``sessions``/``temporal`` default to the configured ones."""
    from activities.monitoring import load_and_rescreen

    given = source_files(path, kind)
    engine = server = None
    if sessions is None:
        from core.database import resolve_database_url
        from store.db import make_engine, make_session_factory

        url, server = resolve_database_url(settings)
        engine = make_engine(url, pool_size=1)
        sessions = make_session_factory(engine)
    try:
        if temporal is None:
            from core.temporal import connect

            temporal = await connect(settings)
        result = await load_and_rescreen(
            settings=settings,
            sessions=sessions,
            temporal=temporal,
            given=given,
            source=source or str(path),
            loaded_by="cli",
        )
        assert result is not None  # only the watch asks for "only if new"
        return result
    finally:
        if engine is not None:
            await engine.dispose()
        del server  # an embedded Postgres (if we started one) is kept up until here


def _load(args: argparse.Namespace, settings: Settings | None = None) -> int:
    try:
        result = asyncio.run(
            load(
                settings=settings or get_settings(),
                path=Path(args.path).resolve(),
                source=args.source,
                kind=args.kind,
            )
        )
    except ListFileError as e:
        print(f"onboarding sanctions load: {e}", file=sys.stderr)
        return 2
    print(format_result(result))
    return 0


def format_result(result: LoadResult) -> str:
    lines = [
        f"list version {result.version}: {result.entry_count} entries"
        + ("" if result.new_version else " (loaded before)"),
    ]
    lines += [f"installed {path}" for path in result.installed] or ["files unchanged"]
    if result.rescreen_started:
        lines.append(f"re-screen started: workflow {result.rescreen_workflow_id}")
    else:
        lines.append(
            f"re-screen not started again: {result.rescreen_workflow_id} was started before"
        )
    return "\n".join(lines)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sanctions",
        help="sanctions monitoring: load a new list and re-screen every client",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="sanctions_command", required=True)
    loader = sub.add_parser("load", help="install a list version and re-screen every client")
    loader.add_argument("path", help="a list file, or a folder of them")
    loader.add_argument("--source", help="where it came from, for the record (default: PATH)")
    loader.add_argument(
        "--kind",
        choices=get_args(ListKind),
        help="the kind of a single file, when neither its name nor its content tells",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return _load(args)


def main(argv: Sequence[str] | None = None) -> int:
    """``onboarding sanctions ...`` on its own."""
    parser = argparse.ArgumentParser(prog="onboarding")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))
