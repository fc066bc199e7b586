"""ETA and breach prediction on simulated history, measured in one run.

    .venv/bin/python bench/eta_bench.py [--cases 20000] [--seed 7] [--holdout 0.2] [--write-docs]

1. Generates ``--cases`` client onboarding cases (``bench/gen_history.py``, ``--seed``).
2. ETA: fits on the cases not held out (20%, by a hash of the reference) and scores the p50
   on the held-out finished cases: share within ±4 h of the actual duration (target >= 80%),
   mean absolute error, [p10, p90] coverage; the same for the per-segment-median baseline.
3. Breach prediction: the model against the shipped 60/40 rule on the held-out stage visits
   still open at 60% of their SLA (target: the model beats the rule on precision and recall).
4. Throughput of ``EtaModel.predict`` over every case (target >= 5,000 cases/s), best of 3,
   and one case at a time (what the activity does).

``--write-docs`` puts the section into docs/BENCHMARKS.md (replacing an earlier one).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "bench"):  # the repo's packages; gen_history beside this file
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from gen_history import generate  # noqa: E402

from analytics import eta, risk  # noqa: E402
from analytics.casetypes import shipped  # noqa: E402

DOC = ROOT / "docs" / "BENCHMARKS.md"
TITLE = "## ETA and breach prediction"


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    ram = "unknown RAM"
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), cpu)
        mem = Path("/proc/meminfo").read_text().splitlines()
        kb = int(next(ln.split()[1] for ln in mem if ln.startswith("MemTotal")))
        ram = f"{kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} cores (nproc), {cpu}, {ram}, Python {platform.python_version()}"


def versions() -> str:
    import lightgbm
    import numpy

    return f"LightGBM {lightgbm.__version__}, numpy {numpy.__version__}"


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def run(args: argparse.Namespace) -> dict[str, Any]:
    case_types = shipped()
    t0 = time.perf_counter()
    intervals = generate(args.cases, args.seed)
    gen_s = time.perf_counter() - t0
    print(f"generated {args.cases} cases, {len(intervals)} intervals in {gen_s:.1f} s")

    t0 = time.perf_counter()
    ev = eta.evaluate(intervals, args.holdout, case_types=case_types)
    eta_s = time.perf_counter() - t0
    print(f"ETA evaluated in {eta_s:.1f} s: {ev['model']} / baseline {ev['baseline']}")

    t0 = time.perf_counter()
    br = risk.evaluate(intervals, args.holdout, case_types=case_types)
    risk_s = time.perf_counter() - t0
    print(f"breach evaluated in {risk_s:.1f} s: model {br['model']} / rule {br['rule']}")

    t0 = time.perf_counter()
    model = eta.fit(intervals, holdout=0, case_types=case_types)
    fit_s = time.perf_counter() - t0
    facts = [iv.facts for iv in intervals if iv.stage == "acknowledgement"]
    model.predict(facts[:1000])  # warm-up
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        model.predict(facts)
        best = min(best, time.perf_counter() - t0)
    one = facts[:200]
    t0 = time.perf_counter()
    for f in one:
        model.predict([f])
    single_ms = (time.perf_counter() - t0) / len(one) * 1000
    blob = model.to_blob()
    print(f"predict: {len(facts) / best:,.0f} cases/s in bulk, {single_ms:.2f} ms one at a time")
    return {
        "gen_s": gen_s,
        "intervals": len(intervals),
        "eta": ev,
        "eta_s": eta_s,
        "risk": br,
        "risk_s": risk_s,
        "fit_s": fit_s,
        "predict_cases": len(facts),
        "predict_per_s": len(facts) / best,
        "single_ms": single_ms,
        "blob_kib": len(blob) / 1024,
        "finished": model.cases,
    }


def section(r: dict[str, Any], args: argparse.Namespace) -> str:
    ev, br = r["eta"], r["risk"]
    m, b = ev["model"], ev["baseline"]
    rm, rr = br["model"], br["rule"]
    eta_ok = m["within_4h"] >= 0.8
    risk_ok = rm["precision"] > rr["precision"] and rm["recall"] > rr["recall"]
    speed_ok = r["predict_per_s"] >= 5000
    lines = [
        TITLE,
        "",
        f"Date: {datetime.now(UTC):%Y-%m-%d}. Machine: {machine()}; {versions()}.",
        "",
        f"Command: `.venv/bin/python bench/eta_bench.py --cases {args.cases} --seed {args.seed} "
        "--write-docs`, one run.",
        "",
        f"- Data: {args.cases:,} simulated client onboarding cases (`bench/gen_history.py`, seed "
        f"{args.seed}; {r['intervals']:,} stage visits, {r['finished']:,} finished, generated "
        f"in {r['gen_s']:.1f} s; median duration {ev['actual_median_hours']:.1f} h in the "
        f"held-out set). {args.holdout:.0%} of the cases are held out by a hash of the case "
        "reference; everything is learned from the others.",
        "",
        "| target | measured | |",
        "|---|---|---|",
        f"| ETA within ±4 h of actual for >= 80% of held-out cases | {m['within_4h']:.1%} "
        f"(baseline {b['within_4h']:.1%}) | {met(eta_ok)} (short by "
        f"{max(0.0, 0.8 - m['within_4h']) * 100:.0f} points) |"
        if not eta_ok
        else f"| ETA within ±4 h of actual for >= 80% of held-out cases | {m['within_4h']:.1%} "
        f"(baseline {b['within_4h']:.1%}) | {met(eta_ok)} |",
        f"| ETA mean absolute error, vs the per-segment-median baseline | {m['mae_hours']:.1f} h "
        f"vs {b['mae_hours']:.1f} h | {'lower' if m['mae_hours'] < b['mae_hours'] else 'higher'} |",
        f"| breach prediction beats the 60/40 rule on precision and recall | model "
        f"{rm['precision']:.3f} / {rm['recall']:.3f}, rule {rr['precision']:.3f} / "
        f"{rr['recall']:.3f} | {met(risk_ok)} |",
        f"| `EtaModel.predict` >= 5,000 cases/s | {r['predict_per_s']:,.0f} cases/s "
        f"({r['predict_cases']:,} cases at once, best of 3); one at a time "
        f"{r['single_ms']:.2f} ms | {met(speed_ok)} |",
        "",
        "ETA, held out, by client type (within ±4 h / MAE; model vs baseline):",
        "",
        "| client type | cases | model within ±4 h | model MAE (h) | baseline within ±4 h "
        "| baseline MAE (h) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for ct, s in ev["by_client_type"].items():
        lines.append(
            f"| {ct} | {s['cases']} | {s['model']['within_4h']:.1%} | "
            f"{s['model']['mae_hours']:.1f} | {s['baseline']['within_4h']:.1%} | "
            f"{s['baseline']['mae_hours']:.1f} |"
        )
    lines += [
        "",
        f"[p10, p90] held the actual duration for {m['p10_p90_coverage']:.1%} of held-out cases "
        f"(nominal 80%); the median width of that band is {m['p10_p90_median_width_hours']:.0f} h. "
        f"Median absolute error of the p50: {m['median_abs_error_hours']:.1f} h.",
        "",
        "Breach prediction, held out, at the rule's own check (60% of the SLA gone), "
        f"{br['checks']:,} stage visits still open there, {br['breaches']:,} of which breached "
        f"(model threshold P >= {br['threshold']:g}):",
        "",
        "| stage | checks | breached | model precision / recall | rule precision / recall |",
        "|---|---:|---:|---|---|",
    ]
    for stage, s in br["by_stage"].items():
        lines.append(
            f"| {stage} | {s['checks']} | {s['breaches']} | {s['model']['precision']:.2f} / "
            f"{s['model']['recall']:.2f} | {s['rule']['precision']:.2f} / "
            f"{s['rule']['recall']:.2f} |"
        )
    later = br["model_from_60_to_90"]
    lines += [
        f"| all | {br['checks']} | {br['breaches']} | {rm['precision']:.3f} / {rm['recall']:.3f} "
        f"| {rr['precision']:.3f} / {rr['recall']:.3f} |",
        "",
        f"The model checked again at 70/80/90% too: precision {later['precision']:.3f}, recall "
        f"{later['recall']:.3f}. The rule's tasks-done share is a proxy in history (office hours "
        "spent over the stage's typical office hours): the history records no tasks.",
        "",
        f"Time: ETA evaluation (fit on {ev['train_cases']:,} cases + scoring) {r['eta_s']:.1f} s; "
        f"breach evaluation {r['risk_s']:.1f} s; a full ETA fit on all {r['finished']:,} "
        f"finished cases {r['fit_s']:.1f} s (one thread); stored model {r['blob_kib']:.0f} KiB.",
        "",
    ]
    if not eta_ok:
        lines += [
            f"Why ±4 h for 80% is out of reach here: the model's own [p10, p90] band, which "
            f"holds {m['p10_p90_coverage']:.0%} of the actual durations, is "
            f"{m['p10_p90_median_width_hours']:.0f} h wide at the median; an 8-hour window "
            "around any single estimate can hold only a small part of that. The spread comes "
            "from what creation facts cannot show: the client's own pace in document "
            "collection (the largest part of a case's time, with a per-client responsiveness), "
            "the compliance queue the case will meet, send-backs, and when in the office week "
            "each hand-off lands. The generator's spreads were not narrowed to reach the "
            "target. What the model does do: beat the per-segment median (MAE and ±4 h share "
            "above), and say how uncertain each estimate is (p10, p90).",
            "",
        ]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    body = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n\n"
    pattern = re.compile(re.escape(TITLE) + r"\n.*?(?=\n## |\Z)", re.DOTALL)
    if pattern.search(body):
        body = pattern.sub(lambda _m: text.rstrip() + "\n", body)
    else:
        body = body.rstrip() + "\n\n" + text
    DOC.write_text(body.rstrip() + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--write-docs", action="store_true", help="update docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    text = section(run(args), args)
    print(text)
    if args.write_docs:
        write_doc(text)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
