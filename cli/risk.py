"""``onboarding risk evaluate|fit``: breach prediction for open stages, learned from history,
against the 60/40 rule the case types ship (docs/eta-and-risk.md).

evaluate PATH   learn from a history CSV's cases except a held-out share (``--holdout``, by a
                hash of the case reference) and print, for the held-out stage visits still
                open at 60% of their SLA, the precision and recall of the model and of the
                rule (at risk when >= 60% of the SLA is gone and < 40% of the tasks done; the
                history has no tasks, so their share is stood in for by the office hours spent
                over the stage's typical office hours), overall and by stage.
fit [PATH]      learn from a history CSV (PATH) or the history table, and store the model as a
                new version of kind ``breach`` in learned_models (``--out FILE``: to a file).

``-`` as PATH reads stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from cli.eta import (
    case_types_from_settings,
    load_history,
    read_history_file,
    share_arg,
    with_database,
)
from store.db import SessionFactory


def print_evaluation(result: dict[str, Any], out: TextIO) -> None:
    print(
        f"held out: {result['holdout_cases']} cases (learned from {result['train_cases']}); "
        f"{result['checks']} stage visits still open at 60% of their SLA, "
        f"{result['breaches']} of which breached",
        file=out,
    )
    print(f"{'':<36}{'precision':>10}{'recall':>8}{'alerts':>8}", file=out)
    rows = [
        (f"model (P >= {result['threshold']:g})", result["model"]),
        ("rule (60% gone, < 40% tasks done)", result["rule"]),
    ]
    for name, s in rows:
        print(f"{name:<36}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['alerts']:>8.0f}", file=out)
    later = result["model_from_60_to_90"]
    print(
        f"model, checked at 60/70/80/90%: precision {later['precision']:.3f}, "
        f"recall {later['recall']:.3f}",
        file=out,
    )
    print("by stage (precision/recall, model | rule):", file=out)
    for stage, s in result["by_stage"].items():
        m, r = s["model"], s["rule"]
        print(
            f"  {stage:<22}{s['checks']:>6} checks {s['breaches']:>6} breached   "
            f"{m['precision']:.2f}/{m['recall']:.2f} | {r['precision']:.2f}/{r['recall']:.2f}",
            file=out,
        )


def _evaluate(args: argparse.Namespace) -> int:
    from analytics.risk import evaluate

    intervals = read_history_file(args.path, err=sys.stderr)
    if intervals is None:
        return 1
    try:
        result = evaluate(
            intervals, args.holdout, seed=args.seed, case_types=case_types_from_settings()
        )
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 1
    print_evaluation(result, sys.stdout)
    return 0


def _fit(args: argparse.Namespace, database_url: str | None) -> int:
    from analytics.risk import fit

    if args.path:
        intervals = read_history_file(args.path, err=sys.stderr)
        if intervals is None:
            return 1
    else:
        intervals = asyncio.run(with_database(database_url, lambda s: load_history(s, None)))
        if not intervals:
            print("the history table holds no stage intervals", file=sys.stderr)
            return 1
    try:
        model = fit(intervals, holdout=args.holdout, case_types=case_types_from_settings())
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 1
    holdout = model.summary.get("holdout", {})
    if "model" in holdout:
        print_evaluation(holdout, sys.stdout)
    if args.out:
        Path(args.out).write_bytes(model.to_blob())
        print(f"model {model.version} ({model.cases} cases) written to {args.out}")
        return 0

    async def save(sessions: SessionFactory) -> bool:
        from store.learned_models import save

        async with sessions.begin() as session:
            return await save(session, model.to_record())

    saved = asyncio.run(with_database(database_url, save))
    print(f"model {model.version} ({model.cases} cases) {'stored' if saved else 'already stored'}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "risk",
        help="breach prediction for open stages: evaluate against the 60/40 rule, fit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="risk_command", required=True)
    ev = sub.add_parser("evaluate", help="model vs rule on held-out history")
    ev.add_argument("path", metavar="PATH", help="history CSV ('-': stdin)")
    ev.add_argument("--holdout", type=share_arg, default=0.2, help="share held out (default 0.2)")
    ev.add_argument("--seed", type=int, default=0, help="which cases are held out")
    fit = sub.add_parser("fit", help="learn from history and store a new model version")
    fit.add_argument("path", nargs="?", metavar="PATH", help="history CSV (default: the table)")
    fit.add_argument("--holdout", type=share_arg, default=0.2, help="share scored (default 0.2)")
    fit.add_argument("--out", metavar="FILE", help="write the model here, not to the database")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, *, database_url: str | None = None) -> int:
    if args.risk_command == "evaluate":
        return _evaluate(args)
    return _fit(args, database_url)


def main(argv: Sequence[str] | None = None, *, database_url: str | None = None) -> int:
    """``onboarding risk ...`` on its own (tests; before it is wired into cli.main)."""
    parser = argparse.ArgumentParser(prog="onboarding")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv), database_url=database_url)
