"""A client base re-screened after a list update: names/s of the re-screen's screening step.

Usage (from the repo root)::

    python bench/rescreen_bench.py [--clients 20000] [--batch N] [--write-docs]

What a bank's daily re-screen meets (issue #16) is its own client base, not the labelled
set: thousands of distinct names whose words recur (first names, surnames, company words),
in many scripts. The clients here come from Faker's person and company names in 30 locales
(Latin with and without diacritics, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Han,
Kana, Hangul, ...), picked uniformly, seeded, every full name distinct; persons carry a
DOB and a country, companies a country, as onboarding records them.

Run as its own process so that "first sight" is exactly that: nothing of the client base
has been normalised, transliterated or compared in this process. Three passes, each
through ``screen_many`` in batches of the re-screen activity's size
(``SANCTIONS_RESCREEN_BATCH_SIZE``):

1. first sight: a worker that just started and loaded the list;
2. next list version: a new index of the same files (a list update builds a new index, so
   every token comparison and per-name entry starts empty), in the same process, so the
   names' normalisation and transliteration are kept, as in a worker that re-screened
   before;
3. tokens seen before: the same index again.

Then the same client base on the re-screen's process pool (``integrations/sanctions/pool.py``,
``SANCTIONS_RESCREEN_PROCESSES``: one process per physical core by default), its processes
started and their indexes built before the clock starts (the build time is reported): first
sight in those processes, then a second pass.

The database reads and alert writes of the activity are not timed here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.screening_bench import DOC, _machine  # noqa: E402
from bench.screening_data import LIST_DIR  # noqa: E402
from core.settings import Settings  # noqa: E402
from integrations.sanctions import (  # noqa: E402
    SanctionsScreener,
    ScreeningResult,
    ScreeningSubject,
    normalize_name,
)
from integrations.sanctions.catalog import ListCatalog, ListFiles  # noqa: E402
from integrations.sanctions.pool import ScreeningPool, default_processes  # noqa: E402

LOCALES = (
    "en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "nl_NL", "pl_PL", "ru_RU",
    "tr_TR", "ar_AA", "zh_CN", "ja_JP", "hi_IN", "sv_SE", "cs_CZ", "el_GR", "fa_IR", "uk_UA",
    "ko_KR", "vi_VN", "id_ID", "es_MX", "ro_RO", "hu_HU", "fi_FI", "da_DK", "no_NO", "he_IL",
)  # fmt: skip
PERSON_SHARE = 0.85
GOAL = 10_000  # names/s, issue #16
BEGIN = "<!-- rescreen bench: written by bench/rescreen_bench.py --write-docs -->"
END = "<!-- /rescreen bench -->"


def client_base(n: int, seed: int = 7) -> list[ScreeningSubject]:
    """``n`` clients with distinct names, as onboarding records them."""
    from faker import Faker

    fakers = {locale: Faker(locale) for locale in LOCALES}
    for i, faker in enumerate(fakers.values()):
        faker.seed_instance(seed + i)
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[ScreeningSubject] = []
    while len(out) < n:
        locale = rng.choice(LOCALES)
        faker, country = fakers[locale], locale[-2:]
        if rng.random() < PERSON_SHARE:
            name = f"{faker.first_name()} {faker.last_name()}"
            born = dt.date(rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28))
            subject = ScreeningSubject(name, born, country, "person")
        else:
            name = faker.company()
            subject = ScreeningSubject(name, None, country, "entity")
        if name not in seen:
            seen.add(name)
            out.append(subject)
    return out


def _pass(
    screen: Callable[[list[ScreeningSubject]], list[ScreeningResult]],
    clients: list[ScreeningSubject],
    batch: int,
) -> tuple[float, float, list[ScreeningResult]]:
    """(names/s wall clock, names/s of CPU time, results), batch by batch."""
    results: list[ScreeningResult] = []
    w0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, len(clients), batch):
        results += screen(clients[start : start + batch])
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return len(clients) / wall, len(clients) / cpu, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=Settings().sanctions_rescreen_batch_size)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--processes", type=int, default=0, help="pool size (0: one per physical core)"
    )
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)

    generated = time.perf_counter()
    clients = client_base(args.clients, args.seed)
    generated = time.perf_counter() - generated

    def load() -> SanctionsScreener:
        return SanctionsScreener.from_files(sdn=LIST_DIR / "sdn.csv", alt=LIST_DIR / "alt.csv")

    load_s = time.perf_counter()
    screener = load()
    load_s = time.perf_counter() - load_s
    load_before = os.getloadavg()[0]
    first = _pass(screener.screen_many, clients, args.batch)
    next_version = load()  # a new index: token comparisons and per-name entries empty
    second = _pass(next_version.screen_many, clients, args.batch)
    warm = _pass(next_version.screen_many, clients, args.batch)
    single = load()
    one_at_a_time = _pass(lambda chunk: [single.screen(s) for s in chunk], clients[:2000], 1)
    processes = args.processes or default_processes()
    pooled: list[tuple[str, tuple[float, float, list[ScreeningResult]]]] = []
    pool_build = 0.0
    if processes > 1:
        files = ListFiles(sdn=LIST_DIR / "sdn.csv", alt=LIST_DIR / "alt.csv")
        version = ListCatalog(files).current().version
        pool = ScreeningPool(files, threshold=screener.threshold, processes=processes)
        try:
            pool_build = time.perf_counter()
            pool.warm(version)
            pool_build = time.perf_counter() - pool_build
            for label in ("first sight", "second pass"):
                rate = _pass(
                    lambda chunk: pool.screen_many(chunk, version=version), clients, args.batch
                )
                pooled.append((f"pool of {processes} processes, {label}", rate))
        finally:
            pool.close()
    load_after = os.getloadavg()[0]
    assert first[2] == second[2] == warm[2], "results must not depend on what was cached"
    for _, (_, _, results) in pooled:
        assert [r.hits for r in results] == [r.hits for r in first[2]], "the pool must agree"

    tokens: set[str] = set()
    for subject in clients:
        is_entity = subject.entity_type == "entity"
        tokens.update(normalize_name(subject.name, is_entity=is_entity).tokens)
    non_ascii = sum(not s.name.isascii() for s in clients) / len(clients)
    alerts = sum(r.decision == "potential_match" for r in first[2])
    rows = [
        ("first sight (a worker that just started)", first),
        ("next list version (new index; normalisation kept)", second),
        ("tokens seen before (same index again)", warm),
        *pooled,
        ("one at a time, next list version (2,000 clients)", one_at_a_time),
    ]
    lines = [
        f"Date: {dt.date.today().isoformat()}. Machine: {_machine()}.",
        "",
        f"Command: `.venv/bin/python bench/rescreen_bench.py --clients {args.clients} "
        "--write-docs`. A client base of "
        f"{len(clients):,} distinct clients ({PERSON_SHARE:.0%} persons with DOB and "
        f"country, the rest companies) from Faker in {len(LOCALES)} locales: "
        f"{len(tokens):,} distinct name tokens, {non_ascii:.0%} of the names not in ASCII "
        f"(diacritics or another script); generated in {generated:.1f} s. Lists: "
        f"`{screener.list_version}`, loaded and indexed in {load_s:.1f} s. Batches of "
        f"{args.batch} (the re-screen activity's batch). Load average {load_before:.1f} "
        f"before, {load_after:.1f} after ({os.cpu_count()} cores). Results identical in the "
        f"three batch passes; {alerts} clients ({alerts / len(clients):.2%}) reach the "
        "threshold (potential matches a person reviews).",
        "",
        "| pass | names/s (wall clock) | names/s (CPU) | goal |",
        "|---|---:|---:|---|",
        *(
            f"| {label} | {wall:,.0f} | {cpu:,.0f} | "
            f"{'met' if wall >= GOAL else 'not met'} (>= {GOAL:,}) |"
            for label, (wall, cpu, _) in rows[:-1]
        ),
        f"| {rows[-1][0]} | {rows[-1][1][0]:,.0f} | {rows[-1][1][1]:,.0f} | |",
        "",
        f"CPU is this process's: a pool's processes work on other cores, so its CPU column "
        f"counts only the worker's part. Pool: {processes} process(es) (one per physical core "
        f"here: {default_processes()}); their indexes built in {pool_build:.1f} s before the "
        "clock started.",
    ]
    print("\n".join(lines))
    if args.write_docs:
        _write_doc(lines)
        print(f"wrote {DOC}")
    return 0


def _write_doc(lines: list[str]) -> None:
    """Replace the block between the markers (kept below the screening section's notes)."""
    text = DOC.read_text(encoding="utf-8")
    block = "\n".join([BEGIN, "### Re-screening a client base", "", *lines, END])
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:  # first time: at the end of the screening section
        at = text.index("\n## ", text.index("## Sanctions screening"))
        text = text[:at].rstrip() + "\n\n" + block + "\n" + text[at:]
    DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
