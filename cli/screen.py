"""``onboarding screen``: batch sanctions screening over JSON lines.

Reads ``{"id", "name", "dob"?, "country"?}`` objects from stdin, one per line,
and writes exactly one JSON result line per input line, in input order, so the
output can be zipped back onto the input. A bad line yields an ``error`` line
and a non-zero exit status at the end instead of aborting the batch.

Names are screened in batches (``--batch-size`` lines, the matcher's batch API
``screen_many``: the same results as one at a time, several times faster); each
batch's lines are written as soon as it is screened. ``--batch-size 1`` answers
every line as it arrives.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from integrations.sanctions import (
    DEFAULT_THRESHOLD,
    SanctionsScreener,
    ScreeningResult,
    ScreeningSubject,
)

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_LOAD_FAILED = 2
BATCH_SIZE = 1000


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``screen`` subcommand."""
    parser = subparsers.add_parser(
        "screen",
        help="screen names (JSON lines on stdin) against sanctions/PEP lists",
        description="Read JSON lines {id, name, dob?, country?} from stdin; write one JSON "
        "result line per input line to stdout, in order.",
    )
    parser.add_argument("--sdn", type=Path, help="OFAC SDN sdn.csv")
    parser.add_argument("--alt", type=Path, help="OFAC SDN alt.csv (aliases)")
    parser.add_argument("--opensanctions", type=Path, help="OpenSanctions targets.simple.csv")
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help=f"potential-match score threshold 0-100 (default {DEFAULT_THRESHOLD})",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        help=f"lines screened together, output written per batch (default {BATCH_SIZE}; "
        "1 answers each line as it arrives)",
    )
    parser.set_defaults(func=run)


def _parse_subject(raw: str) -> tuple[Any, ScreeningSubject]:
    """Validate one input line; raises ValueError with a message fit for the output."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    ident = obj.get("id")
    try:
        name = obj.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError("'name' must be a non-empty string")
        dob_raw = obj.get("dob")
        dob: dt.date | None = None
        if dob_raw not in (None, ""):
            if not isinstance(dob_raw, str):
                raise ValueError("'dob' must be a YYYY-MM-DD string")
            try:
                dob = dt.date.fromisoformat(dob_raw)
            except ValueError:
                raise ValueError(f"'dob' {dob_raw!r} is not a valid YYYY-MM-DD date") from None
        country = obj.get("country")
        if country in (None, ""):
            country = None
        elif not (
            isinstance(country, str) and len(country.strip()) == 2 and country.strip().isalpha()
        ):
            raise ValueError(f"'country' {country!r} must be an ISO 3166-1 alpha-2 code")
        else:
            country = country.strip().upper()
    except ValueError as exc:
        raise _SubjectError(ident, str(exc)) from None
    return ident, ScreeningSubject(name=name.strip(), dob=dob, country=country)


class _SubjectError(ValueError):
    def __init__(self, ident: Any, message: str) -> None:
        super().__init__(message)
        self.ident = ident


def screen_stream(
    screener: SanctionsScreener, stdin: TextIO, stdout: TextIO, *, batch_size: int = BATCH_SIZE
) -> int:
    """Screen every line of ``stdin`` in batches of ``batch_size``; return the exit code."""
    status = EXIT_OK
    # One slot per non-blank input line: its output, or the subject still to be screened.
    pending: list[tuple[Any, ScreeningSubject | None, dict[str, Any] | None]] = []

    def flush() -> None:
        subjects = [subject for _, subject, _ in pending if subject is not None]
        results = iter(screener.screen_many(subjects))
        for ident, subject, error in pending:
            out = error if subject is None else _result_line(ident, next(results))
            stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        stdout.flush()
        pending.clear()

    for line_no, raw in enumerate(stdin, 1):
        if not raw.strip():
            continue
        try:
            ident, subject = _parse_subject(raw)
        except _SubjectError as exc:
            pending.append((exc.ident, None, {"id": exc.ident, "line": line_no, "error": str(exc)}))
            status = EXIT_BAD_INPUT
        except ValueError as exc:
            pending.append((None, None, {"id": None, "line": line_no, "error": str(exc)}))
            status = EXIT_BAD_INPUT
        else:
            pending.append((ident, subject, None))
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    return status


def _result_line(ident: Any, result: ScreeningResult) -> dict[str, Any]:
    # A clear result names no entry: a near miss below the threshold is not a match, and
    # printing one would read as an accusation in a batch report.
    best = result.best if result.decision == "potential_match" else None
    return {
        "id": ident,
        "decision": result.decision,
        "score": result.score,
        "matched_name": best.matched_name if best else None,
        "list_entry_id": best.entry_id if best else None,
    }


def run(args: argparse.Namespace) -> int:
    """Entry point for ``onboarding screen``."""
    if args.sdn is None and args.opensanctions is None:
        print("screen: give --sdn and/or --opensanctions", file=sys.stderr)
        return EXIT_LOAD_FAILED
    if not 0 <= args.threshold <= 100:
        print("screen: --threshold must be between 0 and 100", file=sys.stderr)
        return EXIT_LOAD_FAILED
    if args.batch_size < 1:
        print("screen: --batch-size must be at least 1", file=sys.stderr)
        return EXIT_LOAD_FAILED
    try:
        screener = SanctionsScreener.from_files(
            sdn=args.sdn, alt=args.alt, opensanctions=args.opensanctions, threshold=args.threshold
        )
    except (OSError, ValueError) as exc:
        print(f"screen: cannot load lists: {exc}", file=sys.stderr)
        return EXIT_LOAD_FAILED
    logger.info("screening against %s (%d entries)", screener.list_version, screener.entry_count)
    for stream in (sys.stdin, sys.stdout):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(encoding="utf-8", errors="replace")
    return screen_stream(screener, sys.stdin, sys.stdout, batch_size=args.batch_size)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (``python -m cli.screen ...``) independent of ``cli.main``."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    parser = argparse.ArgumentParser(prog="onboarding")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_parser(subparsers)
    args = parser.parse_args(["screen", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
