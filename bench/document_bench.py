"""Document reading and judging on a generated, labelled set, measured in one run.

    .venv/bin/python bench/document_bench.py [--n 560] [--seed 7] [--write-docs]

1. Generates ``--n`` documents (``bench/document_data.py``, ``--seed``): the same number of
   each class — valid, expired, tampered check digit, name mismatch, rotated or blurred scan,
   stale proof of address, unreadable file — as passport and ID card images (OCR-B MRZ when
   the font is installed), passport PDFs, and utility bills (PDF or photo).
2. Reads each one as the worker does (``DocumentReader``: caps, PDF text layer, OCR) and
   judges it (``verdicts``) against its client profile, one document at a time.
3. Reports the confusion matrix per class (expected verdict vs given), the errors that matter
   (a wrong document machine-verified; a good one rejected), and the throughput per document
   (wall clock, by how it was read).

``--write-docs`` puts the section into docs/BENCHMARKS.md (replacing an earlier one).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from bench import document_data as dd  # noqa: E402
from integrations.documents.common import ReadLimits  # noqa: E402
from integrations.documents.reader import DocumentReader  # noqa: E402
from integrations.documents.verdicts import (  # noqa: E402
    ClientFacts,
    Judgement,
    judge_dated_document,
    judge_identity,
)

DOC = ROOT / "docs" / "BENCHMARKS.md"
TITLE = "## Document reading"
AS_OF = date(2026, 12, 1)
VERDICTS = ("machine_verified", "needs_review", "rejected")


def facts(profile: dict[str, Any]) -> ClientFacts:
    return ClientFacts(
        name=profile["name"],
        country=profile.get("country"),
        nationality=profile.get("nationality"),
        date_of_birth=date.fromisoformat(profile["date_of_birth"]),
    )


def judge(sample: dd.Sample, reader: DocumentReader) -> tuple[Judgement, str, float]:
    started = time.perf_counter()
    reading = reader.read_sync(sample.data, sample.content_type, sample.kind == "government_id")
    if sample.kind == "government_id":
        judged = judge_identity(reading, facts(sample.profile), as_of=AS_OF)
    else:
        judged = judge_dated_document(
            reading, facts(sample.profile), as_of=AS_OF, max_age_days=dd.FRESH_DAYS
        )
    return judged, reading.source, time.perf_counter() - started


_READER: DocumentReader | None = None


def _reader() -> DocumentReader:
    """One reader (and OCR engine) per process, as in a worker."""
    global _READER
    if _READER is None:
        _READER = DocumentReader(ReadLimits(timeout_seconds=120))
        _READER.engine.read(Image.new("RGB", (64, 64), "white"))  # load the models first
    return _READER


def judge_one(sample: dd.Sample) -> dict[str, Any]:
    judged, source, seconds = judge(sample, _reader())
    return {
        "cls": sample.cls,
        "variant": sample.variant,
        "expected": sample.expected,
        "got": judged.verdict.value,
        "source": source,
        "seconds": seconds,
        "codes": [f.code for f in judged.blocking],
        "why": "; ".join(f.staff for f in judged.blocking) or "no finding",
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    samples = dd.dataset(args.n, seed=args.seed, as_of=AS_OF)
    generated = time.perf_counter() - t0
    matrix: dict[str, Counter[str]] = defaultdict(Counter)
    by_source: dict[str, list[float]] = defaultdict(list)
    by_kind: dict[str, list[float]] = defaultdict(list)
    mistakes: list[tuple[str, str, str, str]] = []
    codes: dict[str, Counter[str]] = defaultdict(Counter)
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=args.jobs, initializer=_reader)
        list(pool.map(_reader_ready, range(args.jobs)))  # every process has its models
        results = pool.map(judge_one, samples, chunksize=4)
    else:
        _reader()
        pool = None
        results = map(judge_one, samples)
    started = time.perf_counter()
    cpu0 = time.process_time()
    for i, r in enumerate(results, start=1):
        matrix[r["cls"]][r["got"]] += 1
        by_source[r["source"]].append(r["seconds"])
        kind = r["variant"].split(" ")[0] if r["cls"] != dd.UNREADABLE else "unreadable"
        by_kind[kind].append(r["seconds"])
        for code in r["codes"]:
            codes[r["cls"]][code] += 1
        if r["got"] != r["expected"]:
            mistakes.append((r["cls"], r["variant"], r["got"], r["why"]))
        if args.verbose or i % 50 == 0:
            print(
                f"{i}/{len(samples)} {r['cls']} {r['variant']}: {r['got']} ({r['seconds']:.2f}s)",
                flush=True,
            )
    wall = time.perf_counter() - started
    if pool is not None:
        pool.shutdown()
    return {
        "n": len(samples),
        "jobs": args.jobs,
        "generated_seconds": generated,
        "wall": wall,
        "cpu": time.process_time() - cpu0,
        "matrix": matrix,
        "by_source": by_source,
        "by_kind": by_kind,
        "mistakes": mistakes,
        "codes": codes,
        "font": dd.mrz_font(),
    }


def _reader_ready(_: int) -> bool:
    _reader()
    return True


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def section(r: dict[str, Any], args: argparse.Namespace) -> str:
    matrix: dict[str, Counter[str]] = r["matrix"]
    total = r["n"]
    correct = sum(matrix[c][dd.EXPECTED[c]] for c in dd.CLASSES)
    false_accept = sum(
        matrix[c]["machine_verified"] for c in dd.CLASSES if dd.EXPECTED[c] != "machine_verified"
    )
    false_reject = sum(matrix[c]["rejected"] for c in dd.CLASSES if dd.EXPECTED[c] != "rejected")
    font = r["font"]
    lines = [
        TITLE,
        "",
        f"Date: {datetime.now(UTC).date().isoformat()}. Machine: {os.cpu_count()} cores (nproc), "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; "
        f"{r['jobs']} reading process(es), one document at a time in each (what a worker's "
        "verify activity does; one ONNX thread per process).",
        "",
        f"Command: `.venv/bin/python bench/document_bench.py --n {args.n} --seed {args.seed} "
        f"--jobs {args.jobs} --write-docs`. Documents from `bench/document_data.py` "
        "(generated, deterministic); "
        f"judged as of {AS_OF.isoformat()} against each one's client profile.",
        "",
        f"- MRZ font: {font.name}"
        + (
            "."
            if font.ocr_b
            else " — no OCR-B font was installed, so the MRZ is rendered in the best monospace "
            "font found; install Debian's `fonts-ocr-b` to bench with the real MRZ font."
        ),
        f"- {total} documents, {total // len(dd.CLASSES)} per class; generated in "
        f"{r['generated_seconds']:.1f} s.",
        f"- Correct verdict: {correct}/{total} ({correct / total:.1%}). A wrong document "
        f"machine-verified: {false_accept}. A document rejected that should not have been: "
        f"{false_reject}.",
        f"- Throughput: {total / r['wall']:.2f} documents/s wall clock with {r['jobs']} "
        f"process(es) ({r['wall'] / total * 1000:.0f} ms of wall clock per document; "
        f"{r['wall']:.0f} s in all). Per document, by how it was read, below.",
        "",
        "Confusion matrix (rows: class and the verdict it should get; columns: the verdict given):",
        "",
        "| class | expected | n | machine_verified | needs_review | rejected | correct |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for c in dd.CLASSES:
        row = matrix[c]
        n = sum(row.values())
        lines.append(
            f"| {c} | {dd.EXPECTED[c]} | {n} | "
            + " | ".join(str(row[v]) for v in VERDICTS)
            + f" | {row[dd.EXPECTED[c]] / n:.1%} |"
        )
    lines += [
        "",
        "Time per document, by how it was read:",
        "",
        "| read as | n | p50 ms | p95 ms | docs/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for source, values in sorted(r["by_source"].items()):
        lines.append(
            f"| {source} | {len(values)} | {statistics.median(values) * 1000:.0f} | "
            f"{_pct(values, 0.95) * 1000:.0f} | {len(values) / sum(values):.1f} |"
        )
    lines += ["", "| document | n | p50 ms | p95 ms |", "|---|---:|---:|---:|"]
    for kind, values in sorted(r["by_kind"].items()):
        lines.append(
            f"| {kind} | {len(values)} | {statistics.median(values) * 1000:.0f} | "
            f"{_pct(values, 0.95) * 1000:.0f} |"
        )
    lines += ["", "Findings behind the verdicts (blocking ones), per class:", ""]
    for c in dd.CLASSES:
        found = ", ".join(f"{code} {n}" for code, n in r["codes"][c].most_common())
        lines.append(f"- {c}: {found or 'none'}")
    if r["mistakes"]:
        lines += ["", "Every wrong verdict:", ""]
        for cls, variant, got, why in r["mistakes"][:40]:
            lines.append(f"- {cls} ({variant}) → {got}: {why}")
        if len(r["mistakes"]) > 40:
            lines.append(f"- … and {len(r['mistakes']) - 40} more")
    lines += [
        "",
        "How to read it: a rotated or blurred scan of a valid document should still be "
        "machine-verified; when it is not, it goes to needs_review (a person looks), which "
        "costs time but not safety. The errors that matter are the two counted above: a "
        "wrong document machine-verified, and a good one rejected.",
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
    parser.add_argument("--n", type=int, default=560, help="documents (at least 500)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--jobs", type=int, default=1, help="reading processes (like worker processes)"
    )
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
