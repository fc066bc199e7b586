"""The dashboard's daily roll-up (migration 0013): which facts it holds, which days a query may
take from it, and its refresh. docs/dashboard.md explains the model; in short:

- Facts are keyed by UTC day (a visit by the day it ended, a case by the day it closed, an NPS
  answer by the day it was given) and by segment (case type, client type, tier; stage for
  visits). Each segment has a row every day holding running totals (counts, sums, bucket
  counts of the durations), so a window's figures are two rows' difference per segment,
  however long it is. Percentiles stay exact: the bucket counts say which bucket the
  percentile falls in, and only that bucket's values are read (``dashboard_values``, the
  seconds by bucket, day and segment).
- ``dashboard_rollup_state.rolled_until`` is the watermark: the days before it are rolled up.
- Triggers (0013) write the UTC day of every changed fact to ``dashboard_rollup_dirty`` in the
  writer's own transaction: a late visit, a case closed or re-segmented, a manual event on a
  closed case, an NPS answer. (Its event trigger knows the v1 manual kinds only; the engine
  writes its staff steps before a case closes, and a closed engine case takes no command.)
  A dashboard query takes from the roll-up only the whole days of its window that are before
  the watermark and not dirty; everything else comes from raw rows (``Coverage``). Read in
  one snapshot, the answer is the raw-only answer.
- ``refresh`` recomputes every day from the earliest dirty one (or the old watermark, or
  ``since``) up to the new watermark and clears the markers it saw, in one REPEATABLE READ
  transaction: a fact committed meanwhile keeps its marker for the next refresh.

The fact definitions here (SLA outcome classes, human steps, completed and straight-through
cases, a case's seconds, the UTC day) are the service's too (api/services/dashboard.py), so
the roll-up and the raw queries count the same things. ``ROLLUP_VERSION`` names what they
are: a roll-up built under other definitions is not read, and the next refresh rebuilds it.
"""

from __future__ import annotations

import functools
import logging
import time as clock
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Float,
    Integer,
    and_,
    cast,
    delete,
    exists,
    extract,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.dashboard_rollup import RollupReport
from store.db import SessionFactory
from store.models import (
    Case,
    CaseEvent,
    DashboardCaseTotals,
    DashboardRollupDirty,
    DashboardRollupState,
    DashboardStageTotals,
    DashboardValue,
    NpsResponse,
    StageIntervalRow,
)

log = logging.getLogger(__name__)

SLA_OUTCOMES = ("met", "warned", "breached")  # "none" / NULL: the visit had no SLA
WITHIN_SLA = ("met", "warned")
# Human steps: the audit kinds (case_events.kind) a person's command writes. A closed case with
# one of them, or ever paused, had a person in it: not automated, not straight through.
# - the frozen (v1) onboarding workflow's manual steps (0013's trigger marks these kinds);
V1_MANUAL_EVENT_KINDS = ("compliance_decision", "documents_waived", "sent_back")
# - the case engine's staff steps: a person's vote, a task done, an item ticked, documents
#   waived, an element skipped, a send-back, a pause. The system's own straight-through
#   sign-offs ("auto_approved", "auto_completed", actor "system") are not human steps.
ENGINE_STAFF_EVENT_KINDS = (
    "approval_approve",
    "approval_reject",
    "task_completed",
    "checklist_ticked",
    "documents_waived",
    "element_skipped",
    "sent_back",
    "paused",
)
MANUAL_EVENT_KINDS = tuple(dict.fromkeys((*V1_MANUAL_EVENT_KINDS, *ENGINE_STAFF_EVENT_KINDS)))
STAGE_ACTIVE = "stage_active"  # dashboard_values.metric: visits' active seconds
CASE_SECONDS = "case_seconds"  # completed cases' seconds (stage '')
# Not durations: a day's count of completed straight-through cases per segment (stage '',
# bucket 0, seconds 0, ``n`` the count); only ever summed over a window's rolled-up days.
STP_CASES = "stp_cases"
DURATION_METRICS = (STAGE_ACTIVE, CASE_SECONDS)  # the metrics behind the bucket counts
# What the rolled-up facts mean. A refresh writes it with the roll-up (a ``dashboard_values``
# row of metric VERSION_METRIC, ``n`` the version); a roll-up of another version is not read
# (the dashboard answers from raw rows) and the next refresh rebuilds it from the first day.
# 1: migration 0013 (v1 manual kinds). 2: the engine's staff steps are manual; STP_CASES.
ROLLUP_VERSION = 2
VERSION_METRIC = "rollup_version"
LOCK_KEY = 0x0DA5_0013  # pg advisory lock: one refresh at a time
INSERT_BATCH = 5000
DATE, INTEGER, FLOAT, BIGINT = (
    Date(),
    Integer(),
    Float(),
    BigInteger(),
)  # made once: new ones cost a cache key each


# --------------------------------------------------------------------------- fact definitions
def in_list(column: str, values: tuple[str, ...], *, negate: bool = False) -> Any:
    """A constant IN list rendered as literals, not bind parameters: the partial indexes of
    migration 0005 repeat these predicates and the planner only matches them on constants."""
    quoted = ", ".join(f"'{v}'" for v in values)  # our own constants, never caller input
    return text(f"{column} {'NOT IN' if negate else 'IN'} ({quoted})")


def utc_day(column: Any) -> Any:
    """The UTC calendar day of a timestamptz."""
    return cast(func.timezone("UTC", column), DATE)


# ``dashboard_bucket``'s edges (migration 0013 writes the same doubles into its body):
# eight per octave from 2^-6 s to 2^27 s.
BUCKET_EDGES = tuple(2.0 ** (k / 8) for k in range(-48, 217))


def bucket(seconds: Any) -> Any:
    """The histogram bucket of a duration (``dashboard_bucket``, eight per octave)."""
    return func.dashboard_bucket(seconds, type_=INTEGER)


def completed() -> ColumnElement[bool]:
    """The case was completed: the frozen workflow's status, or an engine case closed with
    resolution ``completed``."""
    return or_(
        Case.status == "completed", and_(Case.status == "closed", Case.resolution == "completed")
    )


def case_seconds() -> Any:
    """How long a case's work took: created -> resolved for engine cases (they close days
    later), created -> closed before the engine."""
    finished = func.coalesce(Case.resolved_at, Case.closed_at)
    return cast(extract("epoch", finished - Case.created_at), FLOAT)


def automated() -> ColumnElement[bool]:
    """No person touched the case: never paused, no human step (``MANUAL_EVENT_KINDS``)."""
    manual_event = exists().where(
        CaseEvent.case_ref == Case.ref, in_list("case_events.kind", MANUAL_EVENT_KINDS)
    )
    return and_(Case.ever_paused.is_(False), ~manual_event)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


# --------------------------------------------------------------------------- coverage
@dataclass(frozen=True)
class Coverage:
    """How one window is answered: ``runs`` of whole days (first, last, inclusive) from the
    roll-up, ``raw`` half-open UTC ranges from raw rows. Together they are the window."""

    runs: tuple[tuple[date, date], ...] = ()
    raw: tuple[tuple[datetime, datetime], ...] = ()


def plan_coverage(
    start: datetime, end: datetime, rolled_until: date | None, dirty: Iterable[date] = ()
) -> Coverage:
    """The whole UTC days of ``[start, end)`` before ``rolled_until`` and not dirty, as runs;
    the rest of the window as raw ranges."""
    if start >= end:
        return Coverage()
    first = start.astimezone(UTC).date()
    if day_start(first) < start:
        first += timedelta(days=1)
    stop = end.astimezone(UTC).date()  # days before it end by ``end``
    stop = min(stop, rolled_until) if rolled_until is not None else first  # None: no roll-up
    runs: list[tuple[date, date]] = []
    day = first
    for hole in sorted({d for d in dirty if first <= d < stop}):
        if hole > day:
            runs.append((day, hole - timedelta(days=1)))
        day = hole + timedelta(days=1)
    if day < stop:
        runs.append((day, stop - timedelta(days=1)))
    raw: list[tuple[datetime, datetime]] = []
    at = start
    for a, b in runs:
        if day_start(a) > at:
            raw.append((at, day_start(a)))
        at = day_start(b + timedelta(days=1))
    if at < end:
        raw.append((at, end))
    return Coverage(runs=tuple(runs), raw=tuple(raw))


async def read_coverage(session: AsyncSession, start: datetime, end: datetime) -> Coverage:
    """``plan_coverage`` with the stored watermark and dirty days (in the caller's snapshot)."""
    row = (await (await session.connection()).execute(_coverage_stmt(start, end))).one_or_none()
    if row is None or row[2] != ROLLUP_VERSION:  # never refreshed, reset, or stale: all raw
        return plan_coverage(start, end, None)
    return plan_coverage(start, end, row.rolled_until, row[1] or ())


@functools.lru_cache(maxsize=64)
def _coverage_stmt(start: datetime, end: datetime) -> Any:
    """``read_coverage``'s statement, kept per window (building it costs more CPU than
    Postgres takes to answer it; only the statement is kept, never an answer)."""
    st, dirty = DashboardRollupState, DashboardRollupDirty
    days = (
        select(func.array_agg(func.distinct(dirty.day)))
        .where(
            dirty.day >= start.astimezone(UTC).date(),
            dirty.day <= end.astimezone(UTC).date(),
            dirty.day < st.rolled_until,
        )
        .scalar_subquery()
    )
    return select(st.rolled_until, days, _stored_version()).where(st.id == 1)


def _stored_version() -> Any:
    """The version the stored roll-up was built with (NULL: none recorded, i.e. 1)."""
    v = DashboardValue
    return (
        select(v.n)
        .where(v.metric == VERSION_METRIC, v.stage == "", v.bucket == 0)
        .limit(1)
        .scalar_subquery()
    )


def raw_ranges(column: Any, ranges: Sequence[tuple[datetime, datetime]]) -> ColumnElement[bool]:
    return or_(*(and_(column >= lo, column < hi) for lo, hi in ranges))


def rolled_days(column: Any, runs: Sequence[tuple[date, date]]) -> ColumnElement[bool]:
    return or_(*(column.between(a, b) for a, b in runs))


def run_bounds(runs: Sequence[tuple[date, date]]) -> tuple[list[date], list[date]]:
    """The cumulative rows whose difference is the runs' counts: each run's last day (+) and
    the day before its first (-). Runs are apart (``plan_coverage``), so no day is both."""
    return [b for _, b in runs], [a - timedelta(days=1) for a, _ in runs]


# --------------------------------------------------------------------------- refresh
async def refresh(
    sessions: SessionFactory,
    *,
    since: date | None = None,
    until: date | None = None,
) -> RollupReport:
    """Recompute the changed days and move the watermark to ``until`` (default: today, UTC).
    Safe to run at any time and more than once: a second run at once finds nothing to do."""
    started = clock.perf_counter()
    until = until or datetime.now(UTC).date()
    async with sessions() as s, s.begin():
        # one snapshot for reading the markers, the raw rows and clearing the markers
        await s.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        if not await s.scalar(select(func.pg_try_advisory_xact_lock(LOCK_KEY))):
            return RollupReport(refreshed=False, reason="another refresh is running")
        state = (
            await s.execute(
                select(DashboardRollupState.rolled_until, _stored_version()).where(
                    DashboardRollupState.id == 1
                )
            )
        ).one_or_none()
        old, version = (state[0], state[1]) if state is not None else (None, None)
        marked = set(await s.scalars(select(DashboardRollupDirty.day).distinct()))
        target = max(until, old) if old is not None else until
        full = old is None or version != ROLLUP_VERSION  # a roll-up of other facts: rebuild
        if full:
            for table in (DashboardStageTotals, DashboardCaseTotals, DashboardValue):
                await s.execute(delete(table))
            first = await _first_day(s)
            starts = [first] if first is not None else []
        else:
            assert old is not None
            starts = [d for d in marked if d < old]
            starts += [old] if old < target else []
            starts += [since] if since is not None else []
        d0 = min(starts) if starts else None
        report = RollupReport(
            refreshed=True,
            rolled_until=target,
            full=full,
            dirty_days=sum(1 for d in marked if old is not None and d < old),
        )
        if d0 is not None and d0 < target:
            report.first_day, report.days = d0, (target - d0).days
            report.value_rows = await _values(s, d0, target)
            report.stage_rows, report.case_rows = await _totals(s, d0, target)
        await _write_version(s, target)
        await s.execute(delete(DashboardRollupDirty))  # the markers of this snapshot only
        stmt = pg_insert(DashboardRollupState).values(
            id=1, rolled_until=target, refreshed_at=func.now()
        )
        await s.execute(
            stmt.on_conflict_do_update(
                index_elements=[DashboardRollupState.id],
                set_={"rolled_until": target, "refreshed_at": func.now()},
            )
        )
    report.seconds = round(clock.perf_counter() - started, 3)
    log.info(
        "dashboard roll-up refreshed until=%s first_day=%s days=%d dirty=%d full=%s s=%.2f",
        report.rolled_until,
        report.first_day,
        report.days,
        report.dirty_days,
        report.full,
        report.seconds,
    )
    return report


async def _write_version(s: AsyncSession, target: date) -> None:
    """Record ``ROLLUP_VERSION`` with the roll-up (one row; its day: the watermark)."""
    v = DashboardValue
    await s.execute(delete(v).where(v.metric == VERSION_METRIC))
    await s.execute(
        insert(v).values(
            metric=VERSION_METRIC,
            stage="",
            bucket=0,
            day=target,
            case_type="",
            client_type="",
            tier="",
            seconds=0.0,
            n=ROLLUP_VERSION,
        )
    )


async def _first_day(s: AsyncSession) -> date | None:
    """The UTC day of the oldest fact (the indexes of 0005 make each minimum a probe)."""
    firsts = [
        select(func.min(StageIntervalRow.exited_at))
        .where(StageIntervalRow.exited_at.is_not(None))
        .scalar_subquery(),
        select(func.min(Case.closed_at)).where(Case.closed_at.is_not(None)).scalar_subquery(),
        select(func.min(NpsResponse.submitted_at)).scalar_subquery(),
    ]
    at = await s.scalar(select(func.least(*firsts)))
    return at.astimezone(UTC).date() if at is not None else None


def _segment_of_case() -> list[Any]:
    return [Case.case_type, Case.client_type, Case.client_tier.label("tier")]


def _daily_stage_facts(first: date, stop: date) -> Any:
    """Per day, segment and stage: the visits that ended that day, summed."""
    si = StageIntervalRow
    day = utc_day(si.exited_at)
    return (
        select(
            day,
            Case.case_type,
            Case.client_type,
            Case.client_tier,
            si.stage,
            func.count(),
            func.count().filter(in_list("stage_intervals.sla_outcome", SLA_OUTCOMES)),
            func.count().filter(in_list("stage_intervals.sla_outcome", WITHIN_SLA)),
            func.count().filter(si.sla_outcome == "breached"),
            func.coalesce(func.sum(si.escalations), 0),
            func.count(si.active_seconds),
            func.coalesce(func.sum(si.active_seconds), 0.0),
            func.min(si.entered_at),
        )
        .join(Case, Case.ref == si.case_ref)
        .where(si.exited_at >= day_start(first), si.exited_at < day_start(stop))
        .group_by(day, Case.case_type, Case.client_type, Case.client_tier, si.stage)
    )


def _daily_case_facts(first: date, stop: date) -> Any:
    """Per day and segment: the cases closed that day (``CASE_SUMS``, then how many of them
    went straight through) and the NPS answers given that day."""
    lo, hi = day_start(first), day_start(stop)
    closed_day, nps_day = utc_day(Case.closed_at), utc_day(NpsResponse.submitted_at)
    segment = [Case.case_type, Case.client_type, Case.client_tier]
    zero = literal(0)
    # grouped first by whether each case was automated and completed, so the "human step?"
    # probe runs once a case, whatever figures need it
    auto, done = automated(), completed()
    kinds = (
        select(
            closed_day.label("day"),
            *_segment_of_case(),
            auto.label("auto"),
            done.label("done"),
            func.count().label("n"),
            func.sum(case_seconds()).label("seconds"),
        )
        .where(Case.closed_at >= lo, Case.closed_at < hi)
        .group_by(closed_day, *segment, auto, done)
        .subquery()
    )
    k = kinds.c
    closed = select(
        k.day,
        k.case_type,
        k.client_type,
        k.tier,
        func.sum(k.n).label("closed_cases"),
        func.coalesce(func.sum(k.n).filter(k.auto), 0).label("automated_cases"),
        func.coalesce(func.sum(k.n).filter(k.done), 0).label("completed_cases"),
        func.coalesce(func.sum(k.seconds).filter(k.done), 0.0).label("completed_seconds"),
        zero.label("nps_promoters"),
        zero.label("nps_passives"),
        zero.label("nps_detractors"),
        func.coalesce(func.sum(k.n).filter(and_(k.auto, k.done)), 0).label("stp_cases"),
    ).group_by(k.day, k.case_type, k.client_type, k.tier)
    n = NpsResponse
    answers = (
        select(
            nps_day,
            *_segment_of_case(),
            zero,
            zero,
            zero,
            literal(0.0),
            func.count().filter(n.score >= 9),
            func.count().filter(n.score.between(7, 8)),
            func.count().filter(n.score <= 6),
            zero,
        )
        .join(Case, Case.ref == n.case_ref)
        .where(n.submitted_at >= lo, n.submitted_at < hi)
        .group_by(nps_day, *segment)
    )
    u = union_all(closed, answers).subquery()
    keys = [u.c.day, u.c.case_type, u.c.client_type, u.c.tier]
    sums = [
        func.sum(u.c[name]) if name == "completed_seconds" else cast(func.sum(u.c[name]), BIGINT)
        for name in (*CASE_SUMS, "stp_cases")
    ]
    return select(*keys, *sums).group_by(*keys)


async def _values(s: AsyncSession, first: date, stop: date) -> int:
    """The seconds of visits (active) and completed cases, by metric, stage, bucket, day and
    segment, with how many times each occurs; written in bucket order, so one bucket's
    values sit together on disk. (``_totals`` adds the days' straight-through counts.)"""
    v = DashboardValue
    await s.execute(delete(v).where(v.day >= first))
    si = StageIntervalRow
    lo, hi = day_start(first), day_start(stop)
    visits = (
        select(
            literal(STAGE_ACTIVE).label("metric"),
            si.stage.label("stage"),
            bucket(si.active_seconds).label("bucket"),
            utc_day(si.exited_at).label("day"),
            *_segment_of_case(),
            si.active_seconds.label("seconds"),
        )
        .join(Case, Case.ref == si.case_ref)
        .where(si.exited_at >= lo, si.exited_at < hi, si.active_seconds.is_not(None))
    )
    seconds = case_seconds()
    cases = select(
        literal(CASE_SECONDS),
        literal(""),
        bucket(seconds),
        utc_day(Case.closed_at),
        *_segment_of_case(),
        seconds,
    ).where(Case.closed_at >= lo, Case.closed_at < hi, completed())
    u = union_all(visits, cases).subquery()
    keys = [u.c[k] for k in VALUE_KEYS]
    merged = select(*keys, func.count()).group_by(*keys).order_by(*keys)
    result = await s.execute(insert(v).from_select([*VALUE_KEYS, "n"], merged))
    return int(getattr(result, "rowcount", 0) or 0)


VALUE_KEYS = ["metric", "stage", "bucket", "day", "case_type", "client_type", "tier", "seconds"]
STAGE_SUMS = (
    "visits",
    "visits_with_sla",
    "within_sla",
    "breaches",
    "escalations",
    "active_n",
    "active_sum",
)
CASE_SUMS = (
    "closed_cases",
    "automated_cases",
    "completed_cases",
    "completed_seconds",
    "nps_promoters",
    "nps_passives",
    "nps_detractors",
)


def _daily_buckets(first: date, stop: date) -> Any:
    """Per day, metric, segment, stage and bucket: how many values (``_values`` wrote them)."""
    v = DashboardValue
    keys = [v.day, v.metric, v.case_type, v.client_type, v.tier, v.stage, v.bucket]
    return (
        select(*keys, func.sum(v.n))
        .where(v.day >= first, v.day < stop, v.metric.in_(DURATION_METRICS))
        .group_by(*keys)
        .order_by(v.day)
    )


Key = tuple[str, ...]  # (case type, client type, tier[, stage])


@dataclass
class _Running:
    """One segment's running totals while the days go by."""

    sums: list[Any]
    counts: dict[int, int]
    cells: tuple[int, list[int]] | None = None  # (first bucket, counts) as last written

    def add(self, sums: Sequence[Any]) -> None:
        self.sums = [a + b for a, b in zip(self.sums, sums, strict=True)]

    def row(self) -> tuple[int, list[int]]:
        if self.cells is None:
            lo, hi = min(self.counts, default=0), max(self.counts, default=-1)
            self.cells = (lo, [self.counts.get(b, 0) for b in range(lo, hi + 1)])
        return self.cells


async def _totals(s: AsyncSession, first: date, stop: date) -> tuple[int, int]:
    """Write the running totals of every day in ``[first, stop)`` for every segment seen by
    then (a row each day: a window reads two rows a segment), carried on from the day
    before's. Returns (stage rows, case rows) written."""
    st, ct = DashboardStageTotals, DashboardCaseTotals
    stage_keys = ["case_type", "client_type", "tier", "stage"]
    case_keys = ["case_type", "client_type", "tier"]
    stages = await _base(s, st, stage_keys, STAGE_SUMS, first)
    cases = await _base(s, ct, case_keys, CASE_SUMS, first)
    await s.execute(delete(st).where(st.day >= first))
    await s.execute(delete(ct).where(ct.day >= first))

    facts: dict[date, list[tuple[Key, list[Any], Any]]] = {}
    for row in await s.execute(_daily_stage_facts(first, stop)):
        day, *rest = row
        facts.setdefault(day, []).append((tuple(rest[:4]), list(rest[4:11]), rest[11]))
    case_facts: dict[date, list[tuple[Key, list[Any]]]] = {}
    stp_counts: list[dict[str, Any]] = []  # dashboard_values rows of STP_CASES, one a day
    for row in await s.execute(_daily_case_facts(first, stop)):
        day, *rest, stp = row
        case_facts.setdefault(day, []).append((tuple(rest[:3]), list(rest[3:])))
        if stp:
            segment = dict(zip(("case_type", "client_type", "tier"), rest[:3], strict=True))
            stp_counts.append(
                {"metric": STP_CASES, "stage": "", "bucket": 0, "day": day, **segment}
                | {"seconds": 0.0, "n": stp}
            )
    for at in range(0, len(stp_counts), INSERT_BATCH):
        await s.execute(insert(DashboardValue), stp_counts[at : at + INSERT_BATCH])
    # the bucket counts are many (about one per value on a full build): streamed, by day
    buckets = (await s.stream(_daily_buckets(first, stop))).partitions(INSERT_BATCH)
    pending: deque[Any] = deque()

    written = [0, 0]
    batches: list[list[dict[str, Any]]] = [[], []]
    for day in _days(first, stop):
        firsts: dict[Key, Any] = {}
        for key, sums, entered in facts.pop(day, ()):
            _carry(stages, key, len(STAGE_SUMS)).add(sums)
            firsts[key] = entered
        for key, sums in case_facts.pop(day, ()):
            _carry(cases, key, len(CASE_SUMS)).add(sums)
        while True:
            if not pending:
                pending = deque(await anext(buckets, []))
                if not pending:
                    break
            if pending[0][0] != day:
                break
            _, metric, c_type, cl_type, tier, stage, b, n = pending.popleft()
            run = (
                _carry(stages, (c_type, cl_type, tier, stage), len(STAGE_SUMS))
                if metric == STAGE_ACTIVE
                else _carry(cases, (c_type, cl_type, tier), len(CASE_SUMS))
            )
            run.counts[b] = run.counts.get(b, 0) + int(n)
            run.cells = None
        for out, running, keys, sums_names, extra in (
            (batches[0], stages, stage_keys, STAGE_SUMS, True),
            (batches[1], cases, case_keys, CASE_SUMS, False),
        ):
            for key, run in running.items():
                lo, cells = run.row()
                record: dict[str, Any] = {"day": day, **dict(zip(keys, key, strict=True))}
                record.update(zip(sums_names, run.sums, strict=True))
                record.update(first_bucket=lo, counts=cells)
                if extra:
                    record["first_entered_at"] = firsts.get(key)
                out.append(record)
        for i, table in enumerate((st, ct)):
            if len(batches[i]) >= INSERT_BATCH:
                await s.execute(insert(table), batches[i])
                written[i] += len(batches[i])
                batches[i] = []
    for i, table in enumerate((st, ct)):
        if batches[i]:
            await s.execute(insert(table), batches[i])
            written[i] += len(batches[i])
    return written[0], written[1]


def _carry(running: dict[Key, _Running], key: Key, width: int) -> _Running:
    run = running.get(key)
    if run is None:
        run = running[key] = _Running(sums=[0] * width, counts={})
    return run


async def _base(
    s: AsyncSession, table: Any, keys: list[str], sums: tuple[str, ...], first: date
) -> dict[Key, _Running]:
    """The running totals as they stood at the end of the day before ``first``."""
    columns = [getattr(table, k) for k in (*keys, *sums, "first_bucket", "counts")]
    rows = await s.execute(select(*columns).where(table.day == first - timedelta(days=1)))
    running: dict[Key, _Running] = {}
    for row in rows:
        key, values = tuple(row[: len(keys)]), list(row[len(keys) :])
        lo, cells = values[-2], values[-1]
        running[key] = _Running(
            sums=values[: len(sums)],
            counts={lo + i: n for i, n in enumerate(cells) if n},
        )
    return running


def _days(first: date, stop: date) -> Iterator[date]:
    day = first
    while day < stop:
        yield day
        day += timedelta(days=1)
