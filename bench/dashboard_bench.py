"""Dashboard benchmark: 1,000,000 stage visits, raw rows vs the daily roll-up (migration 0013).

Usage: .venv/bin/python bench/dashboard_bench.py [--intervals 1000000] [--runs 30] [--write-docs]

Starts a throwaway embedded Postgres migrated to head, bulk-loads synthetic cases, stage
intervals, events and NPS answers with COPY, builds the roll-up (``store.dashboard_rollup``)
up to the data's "today", then times the whole dashboard for 30- and 365-day windows, with and
without segment filters, from raw rows (``use_rollup=False``: the queries before the roll-up)
and with the roll-up, the two interleaved run by run so a noisy machine slows both alike.
Checks that both give the same figures. Then facts arrive late for rolled-up days: the
dashboard with those days dirty, and the incremental refresh that takes them in.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.services import dashboard as svc  # noqa: E402
from schemas.enums import ClientTier, ClientType  # noqa: E402
from store.dashboard_rollup import refresh  # noqa: E402
from store.db import make_engine, make_session_factory  # noqa: E402
from store.embedded import start_embedded_postgres  # noqa: E402
from store.migrate import upgrade_head  # noqa: E402

DOC = ROOT / "docs" / "BENCHMARKS.md"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)  # the data's "now": today is half over
SPAN_DAYS = 730  # cases created over two years
ROLLUP_TABLES = ["dashboard_stage_totals", "dashboard_case_totals", "dashboard_values"]
LATE_VISITS = 2000  # stage visits that arrive late, for the last LATE_DAYS rolled-up days
LATE_DAYS = 7

# stage, typical active seconds (median), SLA budget seconds
STAGES: list[tuple[str, float, float | None]] = [
    ("acknowledgement", 60, 3600),
    ("document_collection", 2 * 86400, 5 * 86400),
    ("compliance_review", 8 * 3600, 2 * 86400),
    ("security_review", 86400, 3 * 86400),
    ("account_setup", 600, 3600),
    ("final_review", 4 * 3600, 86400),
    ("welcome", 30, None),
]
ORDER = [stage for stage, _, _ in STAGES]  # what the API passes: the declared order

CASE_COLUMNS = [
    "ref", "workflow_id", "request_hash", "requested_by", "status", "stage", "sla_state",
    "priority", "ever_paused", "flags", "client_name", "client_email", "client_type",
    "client_tier", "country", "profile", "projection_version", "created_at", "updated_at",
    "closed_at",
]  # fmt: skip
INTERVAL_COLUMNS = [
    "case_ref", "seq", "stage", "entered_at", "exited_at", "outcome", "sla_budget_seconds",
    "sla_outcome", "active_seconds", "paused_seconds", "escalations",
]  # fmt: skip
EVENT_COLUMNS = ["case_ref", "event_key", "kind", "actor", "detail", "occurred_at"]
NPS_COLUMNS = ["case_ref", "score", "submitted_at"]


# --------------------------------------------------------------------------- data
def generate(n_intervals: int, seed: int = 7) -> dict[str, list[tuple[Any, ...]]]:
    """Synthetic read model with realistic shapes: most cases closed, some open and at risk,
    send-backs, pauses, manual decisions for about a third."""
    rng = random.Random(seed)
    cases: list[tuple[Any, ...]] = []
    intervals: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    nps: list[tuple[Any, ...]] = []
    i = 0
    while len(intervals) < n_intervals:
        i += 1
        ref = f"B-{i:08d}"
        ctype = rng.choices(["individual", "business", "enterprise"], [60, 30, 10])[0]
        tier = "premium" if rng.random() < 0.2 else "standard"
        open_case = rng.random() < 0.06
        age = rng.uniform(0, 45 if open_case else SPAN_DAYS)
        created = NOW - timedelta(days=age)
        plan = [s for s in STAGES if s[0] != "security_review" or ctype == "enterprise"]
        fate = rng.random()
        status = "completed"
        if open_case:
            status = rng.choice(["open", "open", "waiting_on_client", "paused"])
            plan = plan[: rng.randint(1, len(plan) - 1)]
        elif fate < 0.05:
            status, plan = "rejected", plan[:3]
        elif fate < 0.08:
            status, plan = "cancelled", plan[: rng.randint(1, 4)]
        paused = rng.random() < 0.08
        manual = rng.random() < 0.3
        sent_back = rng.random() < 0.05 and len(plan) >= 3
        visits = list(plan)
        if sent_back:  # back to document collection once, then on again
            visits = plan[:3] + plan[1:]
        t = created
        worst = "met"
        for seq, (stage, typical, budget) in enumerate(visits, start=1):
            active = rng.lognormvariate(0, 0.8) * typical
            pause = rng.uniform(0, 86400) if paused and rng.random() < 0.3 else 0.0
            last_open = open_case and seq == len(visits)
            exited = None if last_open else t + timedelta(seconds=active + pause)
            outcome = None
            if budget is None:
                outcome = "none"
            elif not last_open:
                ratio = active / budget
                outcome = "met" if ratio < 0.8 else "warned" if ratio < 1 else "breached"
                if outcome == "breached":
                    worst = "breached"
            intervals.append(
                (
                    ref,
                    seq,
                    stage,
                    t,
                    exited,
                    None if last_open else "done",
                    budget,
                    outcome,
                    None if last_open else active,
                    None if last_open else pause,
                    1 if outcome == "breached" else 0,
                )
            )
            if exited is not None:
                t = exited
        closed = None if open_case else t
        if open_case:
            sla = rng.choices(["on_track", "warning", "at_risk", "breached"], [70, 12, 8, 10])[0]
        else:
            sla = "breached" if worst == "breached" else "on_track"
        stage_now = visits[-1][0]
        cases.append(
            (
                ref, f"onboarding-{ref}", "", "bench", status, stage_now, sla,
                "high" if sla == "breached" else "normal", paused, "[]", "Bench Client",
                "bench@example.com", ctype, tier, "GB", "{}", len(visits), created, t, closed,
            )
        )  # fmt: skip
        events.append((ref, "created", "case_created", "api", "{}", created))
        events.append((ref, "ack", "stage_entered", "workflow", "{}", created))
        if manual:
            kind = rng.choice(["compliance_decision", "compliance_decision", "documents_waived"])
            events.append((ref, "manual", kind, "maria", "{}", created + timedelta(days=1)))
        else:
            events.append((ref, "auto", "compliance_auto_approved", "workflow", "{}", created))
        if sent_back:
            events.append((ref, "sentback", "sent_back", "maria", "{}", created))
        if paused:
            events.append((ref, "paused", "paused", "maria", "{}", created))
        if status == "completed" and closed is not None and rng.random() < 0.4:
            score = rng.choices(range(11), [2, 1, 1, 2, 2, 3, 5, 8, 14, 26, 36])[0]
            nps.append((ref, score, closed + timedelta(hours=rng.uniform(1, 72))))
    return {"cases": cases, "intervals": intervals[:n_intervals], "events": events, "nps": nps}


def pg_params(url: str) -> dict[str, str]:
    """asyncpg.connect() keywords from our SQLAlchemy URL (unix socket of pgserver)."""
    parsed = urlparse(url.replace("postgresql+asyncpg://", "postgresql://"))
    return {
        "user": parsed.username or "postgres",
        "database": parsed.path.lstrip("/"),
        "host": parse_qs(parsed.query).get("host", ["localhost"])[0],
    }


async def load(url: str, data: dict[str, list[tuple[Any, ...]]]) -> float:
    conn = await asyncpg.connect(**pg_params(url))
    started = time.perf_counter()
    try:
        await conn.copy_records_to_table("cases", records=data["cases"], columns=CASE_COLUMNS)
        await conn.copy_records_to_table(
            "stage_intervals", records=data["intervals"], columns=INTERVAL_COLUMNS
        )
        await conn.copy_records_to_table(
            "case_events", records=data["events"], columns=EVENT_COLUMNS
        )
        await conn.copy_records_to_table("nps_responses", records=data["nps"], columns=NPS_COLUMNS)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def load_late(url: str, seed: int = 11) -> int:
    """Visits that arrive late: a revisit of an already closed case's last stage, exited on
    one of the last LATE_DAYS days the roll-up holds (what a back-dated import or a delayed
    projection writes). Returns how many."""
    rng = random.Random(seed)
    conn = await asyncpg.connect(**pg_params(url))
    try:
        rows = await conn.fetch(
            "SELECT case_ref, max(seq) AS seq FROM stage_intervals GROUP BY case_ref "
            "HAVING max(exited_at) >= $1 AND max(exited_at) < $2 LIMIT $3",
            NOW - timedelta(days=60),
            NOW - timedelta(days=30),
            LATE_VISITS,
        )
        today = NOW.replace(hour=0)
        late = []
        for r in rows:
            exited = today - timedelta(seconds=rng.uniform(1, LATE_DAYS * 86400))
            active = rng.lognormvariate(0, 0.8) * 8 * 3600
            late.append(
                (
                    r["case_ref"], r["seq"] + 1, "compliance_review",
                    exited - timedelta(seconds=active), exited, "done", 2 * 86400.0,
                    "met" if active < 1.6 * 86400 else "warned", active, 0.0, 0,
                )
            )  # fmt: skip
        await conn.copy_records_to_table("stage_intervals", records=late, columns=INTERVAL_COLUMNS)
        await conn.execute("ANALYZE stage_intervals")
    finally:
        await conn.close()
    return len(late)


# --------------------------------------------------------------------------- timing
def scenarios() -> dict[str, dict[str, Any]]:
    end = NOW.date() + timedelta(days=1)
    month, year = end - timedelta(days=30), end - timedelta(days=365)
    ent_premium = {"client_type": ClientType.ENTERPRISE, "tier": ClientTier.PREMIUM}
    return {
        "30 d": {"date_from": month, "date_to": end},
        "30 d, enterprise+premium": {"date_from": month, "date_to": end, **ent_premium},
        "365 d": {"date_from": year, "date_to": end},
        "365 d, enterprise+premium": {"date_from": year, "date_to": end, **ent_premium},
        "365 d, individual": {
            "date_from": year,
            "date_to": end,
            "client_type": ClientType.INDIVIDUAL,
        },
        "365 d, client_onboarding+standard": {
            "date_from": year,
            "date_to": end,
            "case_type": "client_onboarding",
            "tier": ClientTier.STANDARD,
        },
    }


def p95(samples: list[float]) -> float:
    """Nearest rank."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


Stats = dict[str, float]
LOADS: list[float] = []  # the 1-minute load average after each scenario: how noisy the run was


def stats(samples: list[float]) -> Stats:
    return {"p50": statistics.median(samples), "p95": p95(samples)}


async def _dashboard(
    engine: AsyncEngine, sc: dict[str, Any], use_rollup: bool
) -> tuple[float, Any]:
    """One dashboard as the API asks for it: with the case types' declared stage order."""
    async with make_session_factory(engine)() as s:
        t0 = time.perf_counter()
        d = await svc.build_dashboard(s, use_rollup=use_rollup, stage_order=ORDER, **sc)
        return (time.perf_counter() - t0) * 1000, d


def same_figures(a: Any, b: Any) -> bool:
    """Raw and roll-up dashboards agree: counts and p90s exactly, averages to 1e-9."""

    def close(x: Any, y: Any) -> bool:
        if isinstance(x, float) and isinstance(y, float):
            return math.isclose(x, y, rel_tol=1e-9)
        if isinstance(x, dict):
            return x.keys() == y.keys() and all(close(x[k], y[k]) for k in x)
        if isinstance(x, list):
            return len(x) == len(y) and all(close(i, j) for i, j in zip(x, y, strict=True))
        return bool(x == y)

    exact = [s.p90_active_seconds for s in a.stages] == [s.p90_active_seconds for s in b.stages]
    dump = {"exclude": {"generated_at"}}
    return exact and close(a.model_dump(**dump), b.model_dump(**dump))


async def time_all(
    engine: AsyncEngine, runs: int, names: list[str] | None = None
) -> dict[str, dict[str, Stats]]:
    """Per scenario, raw and roll-up timings of the whole dashboard (one fresh session each),
    interleaved run by run after one warm-up of each; and whether their figures agree."""
    out: dict[str, dict[str, Stats]] = {}
    for name, sc in scenarios().items():
        if names is not None and name not in names:
            continue
        samples: dict[str, list[float]] = {"raw": [], "rollup": []}
        _, raw_d = await _dashboard(engine, sc, False)
        _, rolled_d = await _dashboard(engine, sc, True)
        if not same_figures(rolled_d, raw_d):
            raise SystemExit(f"{name}: the roll-up and the raw rows disagree")
        for _ in range(runs):
            for kind, use in (("raw", False), ("rollup", True)):
                ms, _ = await _dashboard(engine, sc, use)
                samples[kind].append(ms)
        out[name] = {k: stats(v) for k, v in samples.items()}
        LOADS.append(os.getloadavg()[0])
        r, u = out[name]["raw"], out[name]["rollup"]
        print(
            f"  {name:<34} raw p50 {r['p50']:7.1f} p95 {r['p95']:7.1f} ms | "
            f"roll-up p50 {u['p50']:6.1f} p95 {u['p95']:6.1f} ms | same figures"
        )
    return out


async def table_sizes(url: str) -> dict[str, tuple[int, int]]:
    conn = await asyncpg.connect(**pg_params(url))
    try:
        out = {}
        for table in ROLLUP_TABLES:
            n = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608  # constants
            size = await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
            out[table] = (int(n), int(size))
        return out
    finally:
        await conn.close()


# --------------------------------------------------------------------------- report
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


def write_doc(section: str) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n\n"
    pattern = re.compile(r"## Dashboard\n.*?(?=\n## |\Z)", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section.rstrip() + "\n", text)
    else:
        text = text.rstrip() + "\n\n" + section
    DOC.write_text(text.rstrip() + "\n", encoding="utf-8")


def _row(name: str, t: dict[str, Stats]) -> str:
    r, u = t["raw"], t["rollup"]
    return (
        f"| {name} | {r['p50']:.1f} | {r['p95']:.1f} | {u['p50']:.1f} | {u['p95']:.1f} | "
        f"{r['p95'] / u['p95']:.1f}x |"
    )


def report(
    *,
    counts: dict[str, int],
    gen_s: float,
    load_s: float,
    build: Any,
    sizes: dict[str, tuple[int, int]],
    timings: dict[str, dict[str, Stats]],
    late_n: int,
    dirty: dict[str, dict[str, Stats]],
    incremental: Any,
    after: dict[str, dict[str, Stats]],
    runs: int,
    pg_version: str,
) -> str:
    lines = [
        "## Dashboard",
        "",
        f"Date: {datetime.now(UTC):%Y-%m-%d} (the run's; the data's own \"now\" is below). "
        f"Machine: {machine()}. {pg_version} (embedded, pgserver, default "
        "settings). The machine is shared and was busy with other work: its 1-minute load "
        f"average was {min(LOADS):.1f} to {max(LOADS):.1f} on {os.cpu_count()} cores while "
        "timing, so "
        "compare the columns of one run, not runs.",
        "",
        "Command: `.venv/bin/python bench/dashboard_bench.py --write-docs`.",
        "",
        f"- Data: {counts['intervals']:,} stage intervals over {counts['cases']:,} cases created "
        f"over two years, {counts['events']:,} case events, {counts['nps']:,} NPS answers; "
        f"loaded with COPY at head (triggers and indexes in place) in {load_s:.1f} s "
        f'(generated in {gen_s:.1f} s), then VACUUM ANALYZE. The data\'s "now" is '
        f"{NOW:%Y-%m-%d %H:%M} UTC.",
        f"- Roll-up (migration 0013, docs/dashboard.md) built from the first day up to today "
        f"(exclusive) in {build.seconds:.1f} s: "
        + ", ".join(
            f"`{t}` {n:,} rows / {size / 1024 / 1024:.1f} MiB" for t, (n, size) in sizes.items()
        )
        + ".",
        f"- Each figure is the whole dashboard (`build_dashboard`: stage stats, bottlenecks, "
        f"end to end, at risk now, automation, NPS) through SQLAlchemy + asyncpg, one fresh "
        f"session per run, with the declared stage order as the API passes it; median (p50) "
        f"and p95 (nearest rank) of {runs} runs after a warm-up. "
        '"Raw" is `use_rollup=False`, the queries as they were before the roll-up (with '
        'migration 0005\'s indexes); "roll-up" reads the rolled-up days and only today from '
        "raw rows. Raw and roll-up runs alternate, and before timing, each scenario checks "
        "that both give the same figures (counts and p90s exactly, averages to 1e-9).",
        "",
        "| window, filter | raw p50 (ms) | raw p95 (ms) | roll-up p50 (ms) | roll-up p95 (ms) "
        "| p95 speed-up |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [_row(name, t) for name, t in timings.items()]
    lines += [
        "",
        f"Late facts: {late_n:,} stage visits then arrive for the last {LATE_DAYS} rolled-up "
        f"days (their triggers mark those days dirty). Until the next refresh those days are "
        f'read from raw rows ("dirty"); the incremental refresh then recomputed '
        f"{incremental.days} days from {incremental.first_day} in {incremental.seconds:.2f} s "
        f'("refreshed"):',
        "",
        "| window, filter | dirty: raw p95 (ms) | dirty: roll-up p95 (ms) "
        "| refreshed: raw p95 (ms) | refreshed: roll-up p95 (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, t in dirty.items():
        a = after[name]
        lines.append(
            f"| {name} | {t['raw']['p95']:.1f} | {t['rollup']['p95']:.1f} | "
            f"{a['raw']['p95']:.1f} | {a['rollup']['p95']:.1f} |"
        )
    lines += [
        "",
        "Reading the numbers:",
        "",
        "- Raw, the 365-day window aggregates about half the stage visits and sorts them for "
        "`percentile_cont`. The roll-up reads two running-total rows per segment (whatever "
        "the window's length), and for each p90 the values of the one bucket (an eighth of an "
        "octave) it falls in, so a year costs about what a month does.",
        "- Two chains of statements run at once on two connections in one snapshot "
        "(docs/dashboard.md): the straight-through figures (counts, then the values at "
        "the medians' ranks: ~10 + ~28 ms of SQL for a year) on the second, the p90s "
        "(bucket counts, then the values at their ranks: ~4 + ~21 ms), the stage and case "
        "figures and at risk now (an index-only scan of migration 0016's index, ~3 ms) on "
        "the first. A year's window reads more values in the bucket each p90 and median "
        "falls in than a month's; the statements themselves are built once and kept "
        "(`api/services/dashboard.py`).",
        "- Migration 0005's indexes were measured on 2026-11-22 (the same data): they took the "
        "30-day dashboard from 251 to 73 ms and the 365-day one from 898 to 584 ms.",
        "",
    ]
    return "\n".join(lines)


async def bench(url: str, args: argparse.Namespace) -> str:
    t0 = time.perf_counter()
    data = generate(args.intervals)
    gen_s = time.perf_counter() - t0
    counts = {k: len(v) for k, v in data.items()}
    print(f"generated {counts} in {gen_s:.1f} s")
    load_s = await load(url, data)
    del data
    print(f"loaded + VACUUM ANALYZE in {load_s:.1f} s")

    # the API's pool is 10; a dashboard takes its second connection only while fewer than
    # half the pool's are in use (api/services/dashboard.py), so 4 here, not 2
    engine = make_engine(url, pool_size=4)
    sessions = make_session_factory(engine)
    try:
        async with engine.connect() as conn:
            pg_version = str((await conn.exec_driver_sql("SHOW server_version")).scalar_one())
        build = await refresh(sessions, until=NOW.date())
        await run_sql(url, "VACUUM ANALYZE")
        sizes = await table_sizes(url)
        print(f"roll-up built in {build.seconds:.1f} s: {sizes}")
        timings = await time_all(engine, args.runs)

        late_n = await load_late(url)
        short = ["30 d", "365 d"]
        print(f"{late_n} late visits over the last {LATE_DAYS} days; dirty:")
        dirty = await time_all(engine, args.runs, short)
        incremental = await refresh(sessions, until=NOW.date())
        print(f"incremental refresh: {incremental.days} days in {incremental.seconds:.2f} s")
        after = await time_all(engine, args.runs, short)
    finally:
        await engine.dispose()

    return report(
        counts=counts,
        gen_s=gen_s,
        load_s=load_s,
        build=build,
        sizes=sizes,
        timings=timings,
        late_n=late_n,
        dirty=dirty,
        incremental=incremental,
        after=after,
        runs=args.runs,
        pg_version=f"PostgreSQL {pg_version.split()[0]}",
    )


async def run_sql(url: str, sql: str) -> None:
    conn = await asyncpg.connect(**pg_params(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--intervals", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--write-docs", action="store_true", help="update docs/BENCHMARKS.md")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    server, url = start_embedded_postgres(tmp / "pg", database="dashboard_bench")
    started = time.perf_counter()
    try:
        upgrade_head(url)
        section = asyncio.run(bench(url, args))
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    print(section)
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.write_docs:
        write_doc(section)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
