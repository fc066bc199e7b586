"""``onboarding screen``: batch sanctions screening over JSON lines.

Reads ``{"id", "name", "dob"?, "country"?}`` objects from stdin, one per line,
and writes exactly one JSON result line per input line, in input order, so the
output can be zipped back onto the input. A bad line yields an ``error`` line
and a non-zero exit status at the end instead of aborting the batch.
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

from integrations.sanctions import DEFAULT_THRESHOLD, SanctionsScreener, ScreeningSubject

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_LOAD_FAILED = 2


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


def screen_stream(screener: SanctionsScreener, stdin: TextIO, stdout: TextIO) -> int:
    """Screen every line of ``stdin``; return the exit code."""
    status = EXIT_OK
    for line_no, raw in enumerate(stdin, 1):
        if not raw.strip():
            continue
        try:
            ident, subject = _parse_subject(raw)
        except _SubjectError as exc:
            out: dict[str, Any] = {"id": exc.ident, "line": line_no, "error": str(exc)}
            status = EXIT_BAD_INPUT
        except ValueError as exc:
            out = {"id": None, "line": line_no, "error": str(exc)}
            status = EXIT_BAD_INPUT
        else:
            result = screener.screen(subject)
            # A clear result names no entry: a near miss below the threshold is not a match, and
            # printing one would read as an accusation in a batch report.
            best = result.best if result.decision == "potential_match" else None
            out = {
                "id": ident,
                "decision": result.decision,
                "score": result.score,
                "matched_name": best.matched_name if best else None,
                "list_entry_id": best.entry_id if best else None,
            }
        stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        stdout.flush()
    return status


def run(args: argparse.Namespace) -> int:
    """Entry point for ``onboarding screen``."""
    if args.sdn is None and args.opensanctions is None:
        print("screen: give --sdn and/or --opensanctions", file=sys.stderr)
        return EXIT_LOAD_FAILED
    if not 0 <= args.threshold <= 100:
        print("screen: --threshold must be between 0 and 100", file=sys.stderr)
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
    return screen_stream(screener, sys.stdin, sys.stdout)


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
