"""``onboarding eta fit|predict|evaluate``: completion-time estimates learned from history
(docs/eta-and-risk.md).

fit [PATH]      learn from a history CSV (PATH) or, without PATH, from the history table, and
                store the model as a new version in learned_models (``--out FILE`` writes it to
                a file instead and touches no database). Prints the version and the held-out
                scores.
predict PATH    PATH: a CSV of the creation columns (case_ref, case_type, client_type, tier,
                country, service_requirements, documents_submitted_at_creation, created_at;
                more columns are ignored), one case a row. Writes
                ``case_ref,predicted_completed_at,p10,p90`` to stdout, one row per case in the
                same order (predicted = p50). The model: ``--model FILE``, else the newest
                stored. Case types with too little history (or no model at all) are estimated
                from their stages' SLA budgets, and stderr says which. Problems go to stderr
                with their line numbers; exit 1 and nothing written.
evaluate PATH   fit on the history CSV's cases except a held-out share (``--holdout``, by a
                hash of the case reference), and print, for the held-out cases, the share
                estimated within ±4 h, the mean absolute error, the [p10, p90] coverage, and
                the same for a per-segment-median baseline.

``-`` as PATH reads stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from schemas.history import CaseFacts, StageInterval, read_csv, read_facts_csv
from store.db import SessionFactory

if TYPE_CHECKING:
    from analytics.casetypes import CaseTypes
    from analytics.eta import EtaModel

KIND = "eta"
T = TypeVar("T")


# ----------------------------------------------------------------------------- reading files
def _read_text(path: str, err: TextIO) -> str | None:
    try:
        if path == "-":
            return sys.stdin.read()
        # utf-8-sig: a byte-order mark (spreadsheets write one) is not part of the header
        with open(path, encoding="utf-8-sig", newline="") as source:
            return source.read()
    except (OSError, UnicodeDecodeError) as e:
        print(f"cannot read {path}: {e}", file=err)
        return None


def read_history_file(path: str, *, err: TextIO) -> list[StageInterval] | None:
    """A clean history file's intervals, or None with every problem on ``err``."""
    text = _read_text(path, err)
    if text is None:
        return None
    intervals, problems = read_csv(io.StringIO(text))
    for problem in problems:
        print(str(problem), file=err)
    if problems:
        print(f"{len(problems)} problem(s) in {path}", file=err)
        return None
    if not intervals:
        print(f"{path}: no stage intervals", file=err)
        return None
    return intervals


def read_facts_file(path: str, *, err: TextIO) -> tuple[list[CaseFacts], list[int]] | None:
    """A clean facts file's cases and the line each starts on, or None with the problems."""
    text = _read_text(path, err)
    if text is None:
        return None
    facts, problems = read_facts_csv(io.StringIO(text))
    for problem in problems:
        print(str(problem), file=err)
    if problems:
        print(f"{len(problems)} problem(s) in {path}: nothing estimated", file=err)
        return None
    reader = csv.reader(io.StringIO(text))
    next(reader, None)
    lines, start = [], reader.line_num + 1
    for _ in reader:
        lines.append(start)
        start = reader.line_num + 1
    return facts, lines


# ----------------------------------------------------------------------------- commands
def predict_rows(
    model: EtaModel | None,
    facts: list[CaseFacts],
    lines: list[int],
    case_types: CaseTypes,
    *,
    out: TextIO,
    err: TextIO,
) -> int:
    """Write the estimates as CSV to ``out``; 1 (and nothing written) when a case type is
    neither in the model nor a known case type."""
    from analytics.eta import MIN_CASES, predict

    problems = [
        f"line {line}: case type {f.case_type!r} is unknown (no model of it, no case type "
        "with stage budgets)"
        for f, line in zip(facts, lines, strict=True)
        if not (model is not None and model.learned(f.case_type))
        and f.case_type not in case_types.types
    ]
    if problems:
        for problem in problems:
            print(problem, file=err)
        print(f"{len(problems)} problem(s): nothing estimated", file=err)
        return 1
    estimates = predict(model, facts, case_types.budget_hours)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["case_ref", "predicted_completed_at", "p10", "p90"])
    by_budget: dict[str, int] = {}
    for f, est in zip(facts, estimates, strict=True):
        p10, p50, p90 = est.times(f.created_at)
        writer.writerow([f.case_ref, p50.isoformat(), p10.isoformat(), p90.isoformat()])
        if est.basis == "budgets":
            by_budget[f.case_type] = by_budget.get(f.case_type, 0) + 1
    for case_type, n in sorted(by_budget.items()):
        why = (
            "no model stored yet"
            if model is None
            else f"fewer than {MIN_CASES} finished cases of it in model {model.version}"
        )
        print(
            f"note: {n} case(s) of {case_type} estimated from the SLA budgets of their stages "
            f"(basis=budgets: {why}); p10 = p50 = p90",
            file=err,
        )
    return 0


def print_evaluation(result: dict[str, Any], out: TextIO) -> None:
    m, b = result["model"], result["baseline"]
    print(
        f"held out: {result['holdout_cases']} finished cases "
        f"(learned from {result['train_cases']}); median actual "
        f"{result['actual_median_hours']:.1f} h",
        file=out,
    )
    print(f"{'':<28}{'within ±4 h':>12}{'MAE (h)':>10}{'median |err| (h)':>18}", file=out)
    for name, s in (("model (p50)", m), ("baseline (segment median)", b)):
        print(
            f"{name:<28}{s['within_4h']:>12.1%}{s['mae_hours']:>10.1f}"
            f"{s['median_abs_error_hours']:>18.1f}",
            file=out,
        )
    print(f"[p10, p90] holds the actual duration for {m['p10_p90_coverage']:.1%}", file=out)


def _fit(args: argparse.Namespace, database_url: str | None) -> int:
    from analytics.eta import fit

    if args.path:
        intervals = read_history_file(args.path, err=sys.stderr)
        if intervals is None:
            return 1
    else:
        intervals = asyncio.run(
            with_database(database_url, lambda s: load_history(s, args.case_type))
        )
        if not intervals:
            print("the history table holds no stage intervals", file=sys.stderr)
            return 1
    if args.case_type:
        intervals = [v for v in intervals if v.case_type == args.case_type]
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
    saved = asyncio.run(with_database(database_url, lambda s: _save(s, model)))
    state = "stored" if saved else "already stored"
    print(f"model {model.version} ({model.cases} cases, {model.cases_by_type}) {state}")
    return 0


def _predict(args: argparse.Namespace, database_url: str | None) -> int:
    read = read_facts_file(args.path, err=sys.stderr)
    if read is None:
        return 1
    facts, lines = read
    model = _model_from(args.model, database_url)
    if isinstance(model, int):
        return model
    return predict_rows(
        model, facts, lines, case_types_from_settings(), out=sys.stdout, err=sys.stderr
    )


def _evaluate(args: argparse.Namespace) -> int:
    from analytics.eta import evaluate

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


def _model_from(path: str | None, database_url: str | None) -> EtaModel | int | None:
    from analytics.eta import EtaModel

    if path:
        try:
            return EtaModel.from_blob(Path(path).read_bytes())
        except (OSError, ValueError) as e:
            print(f"cannot load the model from {path}: {e}", file=sys.stderr)
            return 1
    blob = asyncio.run(with_database(database_url, _latest_blob))
    return EtaModel.from_blob(blob) if blob is not None else None


def case_types_from_settings() -> CaseTypes:
    from analytics.casetypes import CaseTypes

    try:
        from core.settings import get_settings

        extra: Any = get_settings().case_type_dirs_extra
    except Exception:  # settings refused: the shipped case types are still known
        extra = None
    return CaseTypes.load(extra)


# ----------------------------------------------------------------------------- database
async def load_history(sessions: SessionFactory, case_type: str | None) -> list[StageInterval]:
    from store.history import load

    async with sessions() as session:
        return await load(session, case_type=case_type)


async def _save(sessions: SessionFactory, model: EtaModel) -> bool:
    from store.learned_models import save

    async with sessions.begin() as session:
        return await save(session, model.to_record())


async def _latest_blob(sessions: SessionFactory) -> bytes | None:
    from store.learned_models import latest

    async with sessions() as session:
        stored = await latest(session, KIND)
    return stored.blob if stored is not None else None


async def with_database(
    database_url: str | None, work: Callable[[SessionFactory], Awaitable[T]]
) -> T:
    """``work`` against DATABASE_URL, else the embedded Postgres under the data dir."""
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


# ----------------------------------------------------------------------------- parser
def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eta",
        help="completion-time estimates learned from history: fit, predict, evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="eta_command", required=True)
    fit = sub.add_parser("fit", help="learn from history and store a new model version")
    fit.add_argument("path", nargs="?", metavar="PATH", help="history CSV (default: the table)")
    fit.add_argument("--case-type", metavar="T", help="only cases of this case type")
    fit.add_argument("--holdout", type=share_arg, default=0.2, help="share scored (default 0.2)")
    fit.add_argument("--out", metavar="FILE", help="write the model here, not to the database")
    pred = sub.add_parser("predict", help="estimate completion for new cases (CSV to stdout)")
    pred.add_argument("path", metavar="PATH", help="CSV of creation columns ('-': stdin)")
    pred.add_argument("--model", metavar="FILE", help="a model written by `eta fit --out`")
    ev = sub.add_parser("evaluate", help="held-out scores of a fit on a history CSV")
    ev.add_argument("path", metavar="PATH", help="history CSV ('-': stdin)")
    ev.add_argument("--holdout", type=share_arg, default=0.2, help="share held out (default 0.2)")
    ev.add_argument("--seed", type=int, default=0, help="which cases are held out")
    parser.set_defaults(func=run)


def share_arg(value: str) -> float:
    try:
        share = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 <= share < 1:
        raise argparse.ArgumentTypeError("a share between 0 and 1")
    return share


def run(args: argparse.Namespace, *, database_url: str | None = None) -> int:
    if args.eta_command == "fit":
        return _fit(args, database_url)
    if args.eta_command == "predict":
        return _predict(args, database_url)
    return _evaluate(args)


def main(argv: Sequence[str] | None = None, *, database_url: str | None = None) -> int:
    """``onboarding eta ...`` on its own (tests; before it is wired into cli.main)."""
    parser = argparse.ArgumentParser(prog="onboarding")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv), database_url=database_url)
