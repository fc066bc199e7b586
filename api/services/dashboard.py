"""The SLA-by-stage dashboard: every figure is aggregated by Postgres, never in Python.

The read model can hold millions of stage visits, so each metric is one SQL statement
(aggregates, ``FILTER``, ``percentile_cont``, window functions) and only a few result rows
cross the wire. All statements run in one read-only REPEATABLE READ snapshot, so the
figures on one page agree (with the roll-up, on two connections at once, the second importing
the first's snapshot: ``_beside``).

Windows are half-open ``[from, to)`` in UTC: stage visits count by ``exited_at``, cases by
``closed_at``, NPS answers by ``submitted_at``. "At risk now" ignores the window (it is about
now) but honours the client filters.

The days of a window come from the daily roll-up (``store.dashboard_rollup``,
docs/dashboard.md) when it holds them (before its watermark, not changed since), the rest
from raw rows, in the same snapshot, so every figure is the one the raw rows give; a window of
any length reads two running-total rows per segment. Averages are sums over counts (the raw
``avg`` up to float rounding). The p90s stay exact: the bucket counts (a few hundred short
arrays of counts, added up in Python) find the bucket each percentile falls in, and only that
bucket's values are read and sorted. ``use_rollup=False`` answers from raw rows alone.

Straight-through processing (``straight_through``): of the completed cases, the share with no
human step, overall, by client type, tier and case type, and by ISO week (a case by the week it
closed in), with the median time to complete, beside the reference team's 92% / 8%. Postgres
counts; the shares are worked out from the two counts here, the same way for the roll-up and
the raw rows, so both give the same bits. The medians are exact like the p90s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from operator import add, sub
from typing import Any, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    DateTime,
    Float,
    Integer,
    Select,
    Table,
    Text,
    any_,
    bindparam,
    case,
    cast,
    extract,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from schemas.enums import ClientTier, ClientType
from store.dashboard_rollup import (
    BUCKET_EDGES,
    CASE_SECONDS,
    SLA_OUTCOMES,
    STAGE_ACTIVE,
    STP_CASES,
    WITHIN_SLA,
    Coverage,
    automated,
    case_seconds,
    completed,
    day_start,
    in_list,
    raw_ranges,
    read_coverage,
    rolled_days,
    run_bounds,
    utc_day,
)
from store.models import (
    Case,
    DashboardCaseTotals,
    DashboardStageTotals,
    DashboardValue,
    NpsResponse,
    StageIntervalRow,
)

log = logging.getLogger(__name__)

CLOSED_STATUSES = ("completed", "rejected", "cancelled", "closed")  # frozen three + engine
AT_RISK_STATES = ("warning", "at_risk", "breached")
DEFAULT_DAYS = 30
P90 = 0.9
P50 = 0.5
# The reference team's outcome (the seed's figures): 92% of their completed cases went
# straight through and 8% stopped at a manual gate. The dashboard sets ours beside these.
REFERENCE_STP_PCT = 92.0
REFERENCE_MANUAL_GATE_PCT = 100.0 - REFERENCE_STP_PCT
DEFAULT_WEEKS = 8  # straight through by week: the window's last ISO weeks
MAX_WEEKS = 53
SEGMENTS = ("client_type", "tier", "case_type")  # the client filters, as breakdowns
# Type instances made once: SQLAlchemy works out the cache key of every new type instance
# again, which took longer than some of the queries they are in.
FLOAT, BIGINT, TEXT, INTEGER, DAY = Float(), BigInteger(), Text(), Integer(), Date()
TIMESTAMP = DateTime(timezone=True)
TEXTS, INTEGERS, FLOATS, DATES = ARRAY(Text), ARRAY(Integer), ARRAY(Float), ARRAY(Date)
# The roll-up's tables as Core tables: an ORM attribute in an expression is copied (annotated)
# on every use, which added up to milliseconds a dashboard.
STAGE_TOTALS: Table = DashboardStageTotals.__table__  # type: ignore[assignment]
CASE_TOTALS: Table = DashboardCaseTotals.__table__  # type: ignore[assignment]
VALUES: Table = DashboardValue.__table__  # type: ignore[assignment]

_S = TypeVar("_S", bound=Select)
_in_list = in_list


# --------------------------------------------------------------------------- models
class StageStats(BaseModel):
    """One stage's visits that ended in the window."""

    stage: str
    visits: int
    visits_with_sla: int = Field(description="visits whose SLA outcome is met/warned/breached")
    within_sla: int = Field(description="visits with outcome met or warned")
    sla_compliance_pct: float | None = Field(description="within_sla / visits_with_sla * 100")
    breaches: int
    escalations: int
    avg_active_seconds: float | None
    p90_active_seconds: float | None = Field(description="percentile_cont(0.9), interpolated")
    total_active_seconds: float
    time_rank: int = Field(description="1 = the stage that added the most active time")
    breach_rank: int = Field(description="1 = the stage with the most breaches")


class RankedStage(BaseModel):
    rank: int
    stage: str
    value: float


class Bottlenecks(BaseModel):
    """Where the time and the breaches go. ``dominant`` is the stage that tops both lists."""

    by_active_time: list[RankedStage]
    by_breaches: list[RankedStage]
    dominant: str | None


class EndToEnd(BaseModel):
    completed_cases: int
    avg_seconds: float | None
    p90_seconds: float | None


class AtRiskCase(BaseModel):
    ref: str
    stage: str
    sla_state: str
    priority: str
    client_type: str
    client_tier: str
    created_at: datetime


class AtRisk(BaseModel):
    total: int
    cases: list[AtRiskCase]


class Automation(BaseModel):
    """Cases closed in the window that no person had to touch (never paused, no manual event)."""

    closed_cases: int
    automated_cases: int
    manual_cases: int
    automation_rate_pct: float | None
    manual_share_pct: float | None


class Nps(BaseModel):
    responses: int
    promoters: int
    passives: int
    detractors: int
    promoters_pct: float | None
    passives_pct: float | None
    detractors_pct: float | None
    nps: float | None = Field(description="promoters_pct - detractors_pct")


class StpFigures(BaseModel):
    """Completed cases (closed in the window, or in the week): how many went straight through
    (no human step: never paused, no staff step in the audit trail) and how long they took."""

    completed_cases: int
    straight_through_cases: int
    manual_gate_cases: int = Field(description="completed cases with at least one human step")
    stp_rate_pct: float | None = Field(description="straight_through_cases / completed * 100")
    manual_gate_rate_pct: float | None = Field(description="100 - stp_rate_pct")
    median_seconds_to_complete: float | None = Field(
        description="percentile_cont(0.5) of created -> resolved (engine) or closed (v1)"
    )


class StpSegment(StpFigures):
    dimension: str = Field(description="client_type, tier or case_type")
    value: str


class StpWeek(StpFigures):
    week: str = Field(description="ISO week, e.g. 2031-W10 (weeks start on Monday, UTC)")
    date_from: date
    date_to: date = Field(description="exclusive; a week is cut at the window's ends")
    partial: bool = Field(description="fewer than 7 days of the week are in the window")


class StpReference(BaseModel):
    """The figures ours are set against: the reference team's outcome."""

    stp_rate_pct: float
    manual_gate_rate_pct: float


class StraightThrough(BaseModel):
    """Straight-through processing of the completed cases, overall, by segment and by week,
    beside the reference team's outcome."""

    reference: StpReference
    overall: StpFigures
    by_segment: list[StpSegment] = Field(
        description="by client type, then tier, then case type; segments with completed cases"
    )
    by_week: list[StpWeek] = Field(description="the window's last ISO weeks, oldest first")


class DashboardFilters(BaseModel):
    date_from: date
    date_to: date
    client_type: ClientType | None = None
    tier: ClientTier | None = None
    case_type: str | None = None
    weeks: int = Field(default=DEFAULT_WEEKS, description="ISO weeks in the by-week figures")


class Dashboard(BaseModel):
    filters: DashboardFilters
    generated_at: datetime
    stages: list[StageStats]
    bottlenecks: Bottlenecks
    end_to_end: EndToEnd
    at_risk: AtRisk
    automation: Automation
    nps: Nps
    straight_through: StraightThrough


# --------------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class Window:
    """Half-open UTC interval built from calendar dates."""

    start: datetime
    end: datetime

    @classmethod
    def from_dates(cls, date_from: date, date_to: date) -> Window:
        if date_from >= date_to:
            raise ValueError("date_from must be before date_to")
        return cls(
            start=datetime.combine(date_from, time.min, tzinfo=UTC),
            end=datetime.combine(date_to, time.min, tzinfo=UTC),
        )


def default_range(today: date | None = None) -> tuple[date, date]:
    """The last 30 days including today: ``[today - 29, today + 1)``."""
    today = today or datetime.now(UTC).date()
    end = today + timedelta(days=1)
    return end - timedelta(days=DEFAULT_DAYS), end


def _case_filters(
    client_type: ClientType | None, tier: ClientTier | None, case_type: str | None = None
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if case_type is not None:
        conds.append(Case.case_type == case_type)
    if client_type is not None:
        conds.append(Case.client_type == client_type.value)
    if tier is not None:
        conds.append(Case.client_tier == tier.value)
    return conds


def _pct(part: Any, whole: Any) -> Any:
    """100 * part / whole as double precision, NULL when whole is 0."""
    return cast(100.0 * part / func.nullif(whole, 0), FLOAT)


def _joined_when_filtered(
    stmt: _S,
    fk: Any,
    client_type: ClientType | None,
    tier: ClientTier | None,
    case_type: str | None = None,
) -> _S:
    """Join ``cases`` only when a filter needs it: unfiltered, the fact table suffices."""
    conds = _case_filters(client_type, tier, case_type)
    if not conds:
        return stmt
    return stmt.join(Case, Case.ref == fk).where(*conds)


def _stage_position(column: Any, order: Sequence[str]) -> Any | None:
    """Declared order of a stage (the case types' own order; a stage no case type declares
    comes after them), for stable tie-breaks and display. Stages are free strings."""
    if not order:
        return None
    return func.coalesce(
        func.array_position(cast(array(list(order), type_=TEXT), TEXTS), cast(column, TEXT)),
        len(order) + 1,
    )


Who = tuple[ClientType | None, ClientTier | None, str | None]


def _segment_filters(table: Any, who: Who) -> list[ColumnElement[bool]]:
    """The client filters on a roll-up table: its own segment columns, no join."""
    client_type, tier, case_type = who
    conds: list[ColumnElement[bool]] = []
    if case_type is not None:
        conds.append(table.case_type == case_type)
    if client_type is not None:
        conds.append(table.client_type == client_type.value)
    if tier is not None:
        conds.append(table.tier == tier.value)
    return conds


def _union(parts: list[Any]) -> Any:
    first, *more = parts
    return (first.union_all(*more) if more else first).subquery()


def _total(column: Any) -> Any:
    """A merged count: the sum of the parts' counts, as ``count()``'s type (bigint), 0 when
    there are none, so percentages come out exactly as from the raw rows."""
    return func.coalesce(cast(func.sum(column), BIGINT), 0)


async def _core(session: AsyncSession, stmt: Any, params: dict[str, Any] | None = None) -> Any:
    """Run a Core statement on the session's connection (the ORM's execution path costs a
    few milliseconds a dashboard for nothing here: these statements load no objects)."""
    return await (await session.connection()).execute(stmt, params)


# Statements are built by pure functions of hashable arguments (the coverage, the filters,
# ...) and kept: building one of these statements in SQLAlchemy costs milliseconds of CPU,
# more than Postgres takes to answer some of them, and a kept statement also keeps its
# cache key, so SQLAlchemy finds its compiled form at once. Only the statement is kept, never
# an answer: every dashboard runs its statements in its own snapshot. The same window and
# filters give the same statements all day (until the watermark moves or a day turns dirty).
_kept = functools.lru_cache(maxsize=256)


def _on_days(day: Any, days: list[date]) -> Any:
    """``day = ANY(array)``: one array parameter (an IN list of parameters is expanded into
    the statement's text on every run, which cost milliseconds here)."""
    return day == any_(literal(days, DATES))


def _sign(day: Any, plus: list[date]) -> Any:
    """+1 on a run's last day, -1 on the day before its first (see ``run_bounds``)."""
    return case((_on_days(day, plus), 1), else_=-1)


_EDGES = literal(list(BUCKET_EDGES), FLOATS)


def _bucket(seconds: Any) -> Any:
    """``dashboard_bucket(seconds)`` (store.dashboard_rollup.bucket) as the ``width_bucket``
    it is, over the same edges sent as one array parameter: the same bucket, but Postgres
    plans the SQL function by parsing its body (265 edges) again at every call site of every
    statement, which cost about a millisecond each."""
    return func.width_bucket(seconds, _EDGES, type_=INTEGER)


def _rolled(coverage: Coverage | None) -> Coverage | None:
    """The coverage when it takes anything from the roll-up, else None (raw rows only)."""
    return coverage if coverage is not None and coverage.runs else None


# --------------------------------------------------------------------------- exact p90
@dataclass(frozen=True)
class _Distribution:
    """One p90's raw rows: ``metric`` names it in the roll-up; ``group`` is the stage (or ''
    for cases), ``value`` the seconds, ``at`` the time the window applies to, ``where`` the
    other conditions (filters included once ``scope`` has joined what they need)."""

    metric: str
    totals: Any  # the running-totals table holding its bucket counts
    totals_group: Any
    group: Any
    value: Any
    at: Any
    where: tuple[Any, ...]
    scope: Callable[[Any], Any]


def _stage_active(who: Who) -> _Distribution:
    si = StageIntervalRow
    return _Distribution(
        metric=STAGE_ACTIVE,
        totals=STAGE_TOTALS,
        totals_group=STAGE_TOTALS.c.stage,
        group=si.stage,
        value=si.active_seconds,
        at=si.exited_at,
        where=(si.active_seconds.is_not(None),),
        scope=lambda q: _joined_when_filtered(q, si.case_ref, *who),
    )


def _case_seconds(who: Who) -> _Distribution:
    return _Distribution(
        metric=CASE_SECONDS,
        totals=CASE_TOTALS,
        totals_group=literal(""),
        group=literal(""),
        value=case_seconds(),
        at=Case.closed_at,
        where=(completed(), *_case_filters(*who)),
        scope=lambda q: q,
    )


def _locate(buckets: list[tuple[int, int]], rank: int) -> tuple[int, int]:
    """The bucket holding the ``rank``-th smallest value (0-based) and its offset in it."""
    before = 0
    for b, n in buckets:
        if rank < before + n:
            return b, rank - before
        before += n
    raise ValueError(f"rank {rank} beyond {before} values")


P90s = dict[tuple[str, str], float]  # (metric, group) -> p90


async def _p90s(
    session: AsyncSession, *, metrics: tuple[str, ...], coverage: Coverage, who: Who
) -> P90s:
    """``percentile_cont(0.9)`` per metric and group, exactly, without sorting the window.

    1. Bucket counts: the roll-up's cumulative rows at the runs' bounds, plus the raw rows'
       buckets. They give each group's count n, so the ranks ``percentile_cont`` reads
       (floor and ceil of 0.9 * (n - 1)), and the buckets those ranks fall in.
    2. Those ranks' values, from the values of one bucket (``dashboard_values`` for the
       rolled-up days, raw rows for the rest), sorted by Postgres.
    3. Postgres's own interpolation, in the same double precision:
       ``lo + (pos - floor(pos)) * (hi - lo)``.
    """
    hist = await _bucket_counts(session, metrics=metrics, coverage=coverage, who=who)
    requests: list[tuple[str, str, int, int, int]] = []  # metric, group, bucket, offset, count
    ranks: dict[tuple[str, str], tuple[_Ranks, list[int]]] = {}
    for key, buckets in hist.items():
        plan = _ranks(buckets, P90)
        first = len(requests)
        requests += [(*key, *read) for read in plan.reads]
        ranks[key] = (plan, list(range(first, len(requests))))
    values = await _rank_values(
        session, metrics=metrics, coverage=coverage, who=who, requests=requests
    )
    return {
        key: plan.value([x for k in asked for x in values[k]])
        for key, (plan, asked) in ranks.items()
    }


@dataclass(frozen=True)
class _Ranks:
    """Where ``percentile_cont(q)`` of n values reads: ranks ``lo`` and ``hi`` around position
    ``pos`` = q (n - 1), and the reads (bucket, offset in it, how many) that fetch them."""

    pos: float
    lo: int
    hi: int
    reads: tuple[tuple[int, int, int], ...]

    def value(self, got: list[float]) -> float:
        """Postgres's interpolation, in the same double precision: lo + (pos - lo)(hi - lo)."""
        return got[0] if self.hi == self.lo else got[0] + ((self.pos - self.lo) * (got[1] - got[0]))


def _ranks(buckets: list[tuple[int, int]], q: float) -> _Ranks:
    """The ranks ``percentile_cont(q)`` interpolates between, in the buckets (non-empty, in
    order, with counts) of its values."""
    pos = q * (sum(n for _, n in buckets) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    (b_lo, off_lo), (b_hi, off_hi) = _locate(buckets, lo), _locate(buckets, hi)
    if b_lo == b_hi:  # one read: the values at both ranks
        return _Ranks(pos, lo, hi, ((b_lo, off_lo, hi - lo + 1),))
    return _Ranks(pos, lo, hi, ((b_lo, off_lo, 1), (b_hi, off_hi, 1)))


async def _bucket_counts(
    session: AsyncSession, *, metrics: tuple[str, ...], coverage: Coverage, who: Who
) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """Per metric and group, the non-empty buckets of the window in order, with counts: the
    running totals' bucket counts at the runs' bounds (signed) and the raw rows' buckets
    (as one-bucket arrays), added up here; a few hundred short arrays, already counted."""
    added: dict[tuple[str, str], list[int]] = {}
    for metric, grp, sign, first, counts in await _core(
        session, _bucket_counts_stmt(metrics, coverage, who)
    ):
        _add_counts(added.setdefault((metric, grp), []), first, counts, sign)
    counted = {key: _nonzero(got) for key, got in added.items()}
    return {key: buckets for key, buckets in counted.items() if buckets}


def _distributions(metrics: tuple[str, ...], who: Who) -> list[_Distribution]:
    made = {STAGE_ACTIVE: _stage_active, CASE_SECONDS: _case_seconds}
    return [made[metric](who) for metric in metrics]


@_kept
def _bucket_counts_stmt(metrics: tuple[str, ...], coverage: Coverage, who: Who) -> Any:
    dists = _distributions(metrics, who)
    plus, minus = run_bounds(coverage.runs)
    parts: list[Any] = []
    for d in dists:
        t = d.totals.c
        parts.append(
            select(
                literal(d.metric).label("metric"),
                d.totals_group.label("grp"),
                _sign(t.day, plus).label("sign"),
                t.first_bucket.label("b"),
                t.counts.label("counts"),
            ).where(_on_days(t.day, plus + minus), *_segment_filters(t, who))
        )
    for d in dists if coverage.raw else ():
        b = _bucket(d.value)
        raw = select(
            literal(d.metric), d.group, literal(1), b, array([cast(func.count(), INTEGER)])
        ).where(raw_ranges(d.at, coverage.raw), *d.where)
        parts.append(d.scope(raw).group_by(d.group, b))
    return select(_union(parts))


def _add_counts(into: list[int], first: int, counts: Sequence[int] | None, sign: int) -> None:
    """``into[first + i] += sign * counts[i]`` (``sign`` is +1 or -1, as ``_sign`` and the
    raw parts give it): bucket counts, dense from bucket 0, added up
    element by element in C (``map`` over ``operator.add``), not one Python step a bucket:
    a year's bucket counts are a few hundred arrays of a hundred or more buckets each."""
    if not counts:
        return
    stop = first + len(counts)
    if stop > len(into):
        into.extend([0] * (stop - len(into)))
    into[first:stop] = map(add if sign == 1 else sub, into[first:stop], counts)


def _nonzero(dense: Sequence[int]) -> list[tuple[int, int]]:
    """The non-empty buckets of dense bucket counts, in order, with their counts."""
    return [(b, n) for b, n in enumerate(dense) if n]


async def _rank_values(
    session: AsyncSession,
    *,
    metrics: tuple[str, ...],
    coverage: Coverage,
    who: Who,
    requests: list[tuple[str, str, int, int, int]],
) -> list[list[float]]:
    """For each (metric, group, bucket, offset, count): the ``count`` values from ``offset``
    on among the window's values in that bucket, sorted ascending."""
    if not requests:
        return []
    columns = ("metrics", "grps", "buckets", "offsets", "counts")
    params = dict(zip(columns, (list(col) for col in zip(*requests, strict=True)), strict=True))
    stmt = _rank_values_stmt(metrics, coverage, who)
    return await _at_ranks(session, stmt, params, len(requests))


@_kept
def _rank_values_stmt(metrics: tuple[str, ...], coverage: Coverage, who: Who) -> Any:
    dists = _distributions(metrics, who)
    req = (
        func.unnest(
            bindparam("metrics", type_=TEXTS),
            bindparam("grps", type_=TEXTS),
            bindparam("buckets", type_=INTEGERS),
            bindparam("offsets", type_=INTEGERS),
            bindparam("counts", type_=INTEGERS),
        )
        .table_valued("metric", "grp", "b", "off", "cnt", with_ordinality="k")
        .render_derived(name="req")
    )
    v = VALUES.c
    parts: list[Any] = [
        select(v.seconds.label("s"), v.n.label("n")).where(
            v.metric == req.c.metric,
            v.stage == req.c.grp,
            v.bucket == req.c.b,
            rolled_days(v.day, coverage.runs),
            *_segment_filters(v, who),
        )
    ]
    for d in dists if coverage.raw else ():
        rows = select(d.value.label("s"), d.group.label("grp"), _bucket(d.value).label("b")).where(
            raw_ranges(d.at, coverage.raw), *d.where
        )
        raw = _materialized(d.scope(rows), f"raw_{d.metric}").c
        parts.append(
            select(raw.s, literal_column("1", INTEGER)).where(
                req.c.metric == d.metric, raw.grp == req.c.grp, raw.b == req.c.b
            )
        )
    return _ranks_stmt(req, parts)


async def _at_ranks(
    session: AsyncSession, stmt: Any, params: dict[str, Any], n_requests: int
) -> list[list[float]]:
    """Each request's values at its ranks (``_ranks_stmt``), in ascending order."""
    found: dict[int, list[float]] = {}
    for k, off, cnt, s, n, upto in await _core(session, stmt, params):
        first, stop = max(upto - n, off), min(upto, off + cnt)  # the ranks this row holds
        found.setdefault(int(k), []).extend([s] * int(stop - first))
    return [found[k] for k in range(1, n_requests + 1)]


def _ranks_stmt(req: Any, parts: list[Any]) -> Any:
    """The values at each request's ranks: ``parts`` (correlated to ``req``) yield a
    request's values ``s``, ``n`` times each. Only a request's ``off + cnt`` smallest rows
    can hold its ranks (each row holds at least one), so only those are kept (a top-N sort
    in the lateral subquery); they get a running count in ascending order and only the rows
    holding the ranks asked for come back, as (value, repeats, running count): no row is
    copied ``n`` times, no array of the bucket's values is built."""
    r = req.c
    first, *more = parts
    values = first.union_all(*more) if more else first
    x = values.order_by(literal_column("s")).limit(r.off + r.cnt).lateral("x")
    upto = func.sum(x.c.n).over(
        partition_by=r.k, order_by=x.c.s, rows=(None, 0)
    )  # each row its own running count, equal values in any order
    ranked = (
        select(r.k, r.off, r.cnt, x.c.s, x.c.n, upto.label("upto"))
        .select_from(req)
        .join(x, true())
        .subquery()
    )
    rk = ranked.c
    return (
        select(rk.k, rk.off, rk.cnt, rk.s, rk.n, rk.upto)
        .where(rk.upto > rk.off, rk.upto - rk.n < rk.off + rk.cnt)
        .order_by(rk.k, rk.upto)
    )


# --------------------------------------------------------------------------- queries
async def stage_stats(
    session: AsyncSession,
    *,
    window: Window,
    client_type: ClientType | None = None,
    tier: ClientTier | None = None,
    case_type: str | None = None,
    stage_order: Sequence[str] = (),
    coverage: Coverage | None = None,
) -> list[StageStats]:
    """Per-stage visits, SLA compliance, breaches and active-time distribution, in process
    order: the case types' declared order (``stage_order``), then by first appearance (the
    earliest visit), so any stage string works. Window functions over the grouped rows rank
    the stages by total active time and by breaches (ties in process order) in the same pass
    over the fact table."""
    rolled = _rolled(coverage)
    if rolled is not None:
        who: Who = (client_type, tier, case_type)
        p90 = await _p90s(session, metrics=(STAGE_ACTIVE,), coverage=rolled, who=who)
        return await _stage_stats_rolled(
            session, coverage=rolled, who=who, stage_order=stage_order, p90=p90
        )
    si = StageIntervalRow
    total_active = func.coalesce(func.sum(si.active_seconds), 0.0)
    breaches = func.count().filter(si.sla_outcome == "breached")
    pos = _stage_position(si.stage, stage_order)
    first_seen = func.min(si.entered_at)
    process = (first_seen, si.stage) if pos is None else (pos, first_seen, si.stage)
    with_sla = func.count().filter(_in_list("stage_intervals.sla_outcome", SLA_OUTCOMES))
    within = func.count().filter(_in_list("stage_intervals.sla_outcome", WITHIN_SLA))
    stmt = select(
        si.stage,
        func.count().label("visits"),
        with_sla.label("visits_with_sla"),
        within.label("within_sla"),
        _pct(within, with_sla).label("sla_compliance_pct"),
        breaches.label("breaches"),
        func.coalesce(func.sum(si.escalations), 0).label("escalations"),
        func.avg(si.active_seconds).label("avg_active_seconds"),
        func.percentile_cont(P90).within_group(si.active_seconds).label("p90_active_seconds"),
        total_active.label("total_active_seconds"),
        func.row_number().over(order_by=(total_active.desc(), *process)).label("time_rank"),
        func.row_number().over(order_by=(breaches.desc(), *process)).label("breach_rank"),
    ).where(si.exited_at.is_not(None), si.exited_at >= window.start, si.exited_at < window.end)
    stmt = _joined_when_filtered(stmt, si.case_ref, client_type, tier, case_type)
    stmt = stmt.group_by(si.stage).order_by(*process)
    rows = (await session.execute(stmt)).mappings().all()
    return [StageStats.model_validate(dict(r)) for r in rows]


async def _stage_stats_rolled(
    session: AsyncSession,
    *,
    coverage: Coverage,
    who: Who,
    stage_order: Sequence[str],
    p90: P90s,
) -> list[StageStats]:
    """``stage_stats`` from the roll-up's running totals (two rows a segment for each run of
    days) plus the raw rows of the rest of the window: the same figures, merged from the
    parts' counts and sums.

    The earliest entry only orders the stages ``stage_order`` leaves out. With at most one
    such stage it changes nothing and is not read; otherwise it is the minimum of the days'
    own earliest entries (a row per day and segment)."""
    rows = await _stage_rows(session, coverage, who, stage_order, first_seen=not stage_order)
    outside = [r for r in rows if r["stage"] not in stage_order]
    if stage_order and len(outside) > 1:
        rows = await _stage_rows(session, coverage, who, stage_order, first_seen=True)
    return [
        StageStats.model_validate({**r, "p90_active_seconds": p90.get((STAGE_ACTIVE, r["stage"]))})
        for r in rows
    ]


STAGE_FIGURES = (
    "visits",
    "visits_with_sla",
    "within_sla",
    "breaches",
    "escalations",
    "active_n",
    "active_sum",
)


async def _stage_rows(
    session: AsyncSession,
    coverage: Coverage,
    who: Who,
    stage_order: Sequence[str],
    *,
    first_seen: bool,
) -> Sequence[Any]:
    stmt = _stage_rows_stmt(coverage, who, tuple(stage_order), first_seen)
    return (await _core(session, stmt)).mappings().all()


@_kept
def _stage_rows_stmt(
    coverage: Coverage, who: Who, stage_order: tuple[str, ...], first_seen: bool
) -> Any:
    si, t = StageIntervalRow, STAGE_TOTALS.c
    plus, minus = run_bounds(coverage.runs)
    sign = _sign(t.day, plus)
    no_time = cast(null(), TIMESTAMP)
    parts: list[Any] = [
        select(
            t.stage,
            *((sign * getattr(t, name)).label(name) for name in STAGE_FIGURES),
            no_time.label("first_seen"),
        ).where(_on_days(t.day, plus + minus), *_segment_filters(t, who))
    ]
    if first_seen:
        zero = literal(0)
        parts.append(
            select(t.stage, *([zero] * 6), literal(0.0), t.first_entered_at).where(
                rolled_days(t.day, coverage.runs),
                t.first_entered_at.is_not(None),
                *_segment_filters(t, who),
            )
        )
    if coverage.raw:
        raw = select(
            si.stage,
            func.count(),
            func.count().filter(_in_list("stage_intervals.sla_outcome", SLA_OUTCOMES)),
            func.count().filter(_in_list("stage_intervals.sla_outcome", WITHIN_SLA)),
            func.count().filter(si.sla_outcome == "breached"),
            func.coalesce(func.sum(si.escalations), 0),
            func.count(si.active_seconds),
            func.coalesce(func.sum(si.active_seconds), 0.0),
            func.min(si.entered_at) if first_seen else no_time,
        ).where(raw_ranges(si.exited_at, coverage.raw))
        parts.append(_joined_when_filtered(raw, si.case_ref, *who).group_by(si.stage))
    u = _union(parts)
    with_sla, within = _total(u.c.visits_with_sla), _total(u.c.within_sla)
    breaches = _total(u.c.breaches)
    total_active = func.coalesce(func.sum(u.c.active_sum), 0.0)
    pos = _stage_position(u.c.stage, stage_order)
    first = func.min(u.c.first_seen)
    process = (first, u.c.stage) if pos is None else (pos, first, u.c.stage)
    return (
        select(
            u.c.stage,
            _total(u.c.visits).label("visits"),
            with_sla.label("visits_with_sla"),
            within.label("within_sla"),
            _pct(within, with_sla).label("sla_compliance_pct"),
            breaches.label("breaches"),
            _total(u.c.escalations).label("escalations"),
            (func.sum(u.c.active_sum) / func.nullif(_total(u.c.active_n), 0)).label(
                "avg_active_seconds"
            ),
            total_active.label("total_active_seconds"),
            func.row_number().over(order_by=(total_active.desc(), *process)).label("time_rank"),
            func.row_number().over(order_by=(breaches.desc(), *process)).label("breach_rank"),
        )
        .group_by(u.c.stage)
        .having(_total(u.c.visits) > 0)  # a segment's totals go on after its last visit
        .order_by(*process)
    )


def rank_bottlenecks(stages: list[StageStats]) -> Bottlenecks:
    """The two rankings, in the order Postgres ranked them (see ``stage_stats``); this only
    lays out the handful of already-aggregated stage rows."""
    by_time = sorted(stages, key=lambda st: st.time_rank)
    by_breaches = sorted(stages, key=lambda st: st.breach_rank)
    dominant = next(
        (st.stage for st in stages if st.time_rank == 1 and st.breach_rank == 1 and st.breaches),
        None,
    )
    return Bottlenecks(
        by_active_time=[
            RankedStage(rank=st.time_rank, stage=st.stage, value=st.total_active_seconds)
            for st in by_time
        ],
        by_breaches=[
            RankedStage(rank=st.breach_rank, stage=st.stage, value=float(st.breaches))
            for st in by_breaches
        ],
        dominant=dominant,
    )


CASE_FIGURES = (
    "completed_cases",
    "completed_seconds",
    "closed_cases",
    "automated_cases",
    "nps_promoters",
    "nps_passives",
    "nps_detractors",
)


async def _case_figures(
    session: AsyncSession, *, coverage: Coverage, who: Who, p90: P90s
) -> tuple[EndToEnd, Automation, Nps]:
    """End to end, automation and NPS from the roll-up's running totals (two rows a segment
    for each run of days) plus the raw rows of the rest of the window, in one statement: the
    parts' counts and sums, then the same figures ``end_to_end``, ``automation`` and ``nps``
    compute from raw rows."""
    r = (await _core(session, _case_figures_stmt(coverage, who))).mappings().one()
    closed, auto_cases, rate = (
        int(r["closed_cases"]),
        int(r["automated_cases"]),
        r["automation_rate_pct"],
    )
    return (
        EndToEnd(
            completed_cases=int(r["completed_cases"]),
            avg_seconds=r["avg_seconds"],
            p90_seconds=p90.get((CASE_SECONDS, "")),
        ),
        Automation(
            closed_cases=closed,
            automated_cases=auto_cases,
            manual_cases=closed - auto_cases,
            automation_rate_pct=rate,
            manual_share_pct=None if rate is None else 100.0 - rate,
        ),
        Nps.model_validate({k: r[k] for k in Nps.model_fields}),
    )


@_kept
def _case_figures_stmt(coverage: Coverage, who: Who) -> Any:
    t, n = CASE_TOTALS.c, NpsResponse
    plus, minus = run_bounds(coverage.runs)
    sign = _sign(t.day, plus)
    seconds = case_seconds()
    zero = literal(0)
    parts: list[Any] = [
        select(*((sign * getattr(t, name)).label(name) for name in CASE_FIGURES)).where(
            _on_days(t.day, plus + minus), *_segment_filters(t, who)
        )
    ]
    if coverage.raw:
        parts.append(
            select(
                func.count().filter(completed()),
                func.coalesce(func.sum(seconds).filter(completed()), 0.0),
                func.count(),
                func.count().filter(automated()),
                zero,
                zero,
                zero,
            ).where(raw_ranges(Case.closed_at, coverage.raw), *_case_filters(*who))
        )
        answers = select(
            zero,
            literal(0.0),
            zero,
            zero,
            func.count().filter(n.score >= 9),
            func.count().filter(n.score.between(7, 8)),
            func.count().filter(n.score <= 6),
        ).where(raw_ranges(n.submitted_at, coverage.raw))
        parts.append(_joined_when_filtered(answers, n.case_ref, *who))
    u = _union(parts)
    completed_n, closed_n, auto_n = (
        _total(u.c.completed_cases),
        _total(u.c.closed_cases),
        _total(u.c.automated_cases),
    )
    promoters, passives, detractors = (
        _total(u.c.nps_promoters),
        _total(u.c.nps_passives),
        _total(u.c.nps_detractors),
    )
    responses = promoters + passives + detractors  # every score is in exactly one class
    return select(
        completed_n.label("completed_cases"),
        cast(func.sum(u.c.completed_seconds) / func.nullif(completed_n, 0), FLOAT).label(
            "avg_seconds"
        ),
        closed_n.label("closed_cases"),
        auto_n.label("automated_cases"),
        _pct(auto_n, closed_n).label("automation_rate_pct"),
        responses.label("responses"),
        promoters.label("promoters"),
        passives.label("passives"),
        detractors.label("detractors"),
        _pct(promoters, responses).label("promoters_pct"),
        _pct(passives, responses).label("passives_pct"),
        _pct(detractors, responses).label("detractors_pct"),
        _pct(promoters - detractors, responses).label("nps"),
    )


async def end_to_end(
    session: AsyncSession,
    *,
    window: Window,
    client_type: ClientType | None = None,
    tier: ClientTier | None = None,
    case_type: str | None = None,
    coverage: Coverage | None = None,
) -> EndToEnd:
    """Completed cases closed in the window and how long their work took: created→resolved
    for engine cases (they close ``close_after`` days later), created→closed before it."""
    who: Who = (client_type, tier, case_type)
    rolled = _rolled(coverage)
    if rolled is not None:
        p90 = await _p90s(session, metrics=(CASE_SECONDS,), coverage=rolled, who=who)
        return (await _case_figures(session, coverage=rolled, who=who, p90=p90))[0]
    seconds = case_seconds()
    stmt = select(
        func.count().label("completed_cases"),
        cast(func.avg(seconds), FLOAT).label("avg_seconds"),
        func.percentile_cont(P90).within_group(seconds).label("p90_seconds"),
    ).where(
        Case.closed_at.is_not(None),
        Case.closed_at >= window.start,
        Case.closed_at < window.end,
        completed(),
        *_case_filters(*who),
    )
    row = (await session.execute(stmt)).mappings().one()
    return EndToEnd.model_validate(dict(row))


async def at_risk_now(
    session: AsyncSession,
    *,
    client_type: ClientType | None = None,
    tier: ClientTier | None = None,
    case_type: str | None = None,
    limit: int = 50,
) -> AtRisk:
    """Open cases whose SLA is in warning, at risk or breached, newest first (no window)."""
    stmt = _at_risk_stmt((client_type, tier, case_type), limit)
    rows = (await _core(session, stmt)).mappings().all()
    total = int(rows[0]["total"]) if rows else 0
    return AtRisk(
        total=total,
        cases=[AtRiskCase.model_validate({k: r[k] for k in r if k != "total"}) for r in rows],
    )


@_kept
def _at_risk_stmt(who: Who, limit: int) -> Any:
    """Migration 0016's partial index repeats these predicates and covers the columns: the
    count of every open case in trouble is an index-only scan."""
    return (
        select(
            Case.ref,
            Case.stage,
            Case.sla_state,
            Case.priority,
            Case.client_type,
            Case.client_tier,
            Case.created_at,
            func.count().over().label("total"),
        )
        .where(
            _in_list("cases.status", CLOSED_STATUSES, negate=True),
            _in_list("cases.sla_state", AT_RISK_STATES),
            *_case_filters(*who),
        )
        .order_by(Case.created_at.desc(), Case.ref)
        .limit(limit)
    )


async def automation(
    session: AsyncSession,
    *,
    window: Window,
    client_type: ClientType | None = None,
    tier: ClientTier | None = None,
    case_type: str | None = None,
    coverage: Coverage | None = None,
) -> Automation:
    """Share of cases closed in the window that were never paused and had no manual event."""
    who: Who = (client_type, tier, case_type)
    rolled = _rolled(coverage)
    if rolled is not None:
        return (await _case_figures(session, coverage=rolled, who=who, p90={}))[1]
    auto = func.count().filter(automated())
    stmt = select(
        func.count().label("closed_cases"),
        auto.label("automated_cases"),
        _pct(auto, func.count()).label("automation_rate_pct"),
    ).where(
        Case.closed_at.is_not(None),
        Case.closed_at >= window.start,
        Case.closed_at < window.end,
        *_case_filters(*who),
    )
    row = (await session.execute(stmt)).mappings().one()
    closed, auto_cases = int(row["closed_cases"]), int(row["automated_cases"])
    rate = row["automation_rate_pct"]
    return Automation(
        closed_cases=closed,
        automated_cases=auto_cases,
        manual_cases=closed - auto_cases,
        automation_rate_pct=rate,
        manual_share_pct=None if rate is None else 100.0 - rate,
    )


async def nps(
    session: AsyncSession,
    *,
    window: Window,
    client_type: ClientType | None = None,
    tier: ClientTier | None = None,
    case_type: str | None = None,
    coverage: Coverage | None = None,
) -> Nps:
    """Net Promoter Score of answers submitted in the window (promoters 9-10, detractors 0-6)."""
    who: Who = (client_type, tier, case_type)
    rolled = _rolled(coverage)
    if rolled is not None:
        return (await _case_figures(session, coverage=rolled, who=who, p90={}))[2]
    n = NpsResponse
    promoters = func.count().filter(n.score >= 9)
    passives = func.count().filter(n.score.between(7, 8))
    detractors = func.count().filter(n.score <= 6)
    total = func.count()
    stmt = select(
        total.label("responses"),
        promoters.label("promoters"),
        passives.label("passives"),
        detractors.label("detractors"),
        _pct(promoters, total).label("promoters_pct"),
        _pct(passives, total).label("passives_pct"),
        _pct(detractors, total).label("detractors_pct"),
        _pct(promoters - detractors, total).label("nps"),
    ).where(n.submitted_at >= window.start, n.submitted_at < window.end)
    stmt = _joined_when_filtered(stmt, n.case_ref, *who)
    row = (await session.execute(stmt)).mappings().one()
    return Nps.model_validate(dict(row))


# --------------------------------------------------------------------------- straight through
GroupKey = tuple[str, str]  # ("", "") the window; (dimension, value); ("week", its Monday)
OVERALL: GroupKey = ("", "")


@dataclass(frozen=True)
class IsoWeek:
    """One ISO week of the window (Monday to Sunday, UTC), cut at the window's ends."""

    monday: date
    start: date
    end: date  # exclusive

    @property
    def key(self) -> GroupKey:
        return ("week", self.monday.isoformat())


def last_weeks(window: Window, n: int) -> list[IsoWeek]:
    """The last ``n`` ISO weeks that overlap the window, oldest first."""
    first, stop = window.start.date(), window.end.date()
    last = stop - timedelta(days=1)
    monday = last - timedelta(days=last.weekday())
    weeks: list[IsoWeek] = []
    while len(weeks) < n and monday + timedelta(days=7) > first:
        weeks.append(IsoWeek(monday, max(monday, first), min(monday + timedelta(days=7), stop)))
        monday -= timedelta(days=7)
    return weeks[::-1]


def _week_of(day: Any) -> Any:
    """The Monday of a date's ISO week, by date arithmetic (no time zone involved)."""
    return day - cast(extract("isodow", day), INTEGER) + literal_column("1", INTEGER)


def _clip(coverage: Coverage, first: date, stop: date) -> Coverage:
    """The part of a coverage within the days ``[first, stop)``."""
    lo, hi = day_start(first), day_start(stop)
    last = stop - timedelta(days=1)
    return Coverage(
        runs=tuple(
            (max(a, first), min(b, last)) for a, b in coverage.runs if a <= last and b >= first
        ),
        raw=tuple((max(a, lo), min(b, hi)) for a, b in coverage.raw if a < hi and b > lo),
    )


@dataclass
class _Tally:
    """One group's completed cases: counted, straight through, their seconds by bucket."""

    completed: int = 0
    stp: int = 0
    buckets: list[int] = field(default_factory=list)  # dense by bucket (``_add_counts``)
    median: float | None = None

    def figures(self) -> dict[str, Any]:
        rate = 100.0 * self.stp / self.completed if self.completed else None
        return {
            "completed_cases": self.completed,
            "straight_through_cases": self.stp,
            "manual_gate_cases": self.completed - self.stp,
            "stp_rate_pct": rate,
            "manual_gate_rate_pct": None if rate is None else 100.0 - rate,
            "median_seconds_to_complete": self.median,
        }


def _segment_order(key: GroupKey) -> tuple[int, int, str]:
    """Client types and tiers in their declared order, case types by name."""
    dim, value = key
    declared: list[str] = []
    if dim == "client_type":
        declared = [t.value for t in ClientType]
    elif dim == "tier":
        declared = [t.value for t in ClientTier]
    rank = declared.index(value) if value in declared else len(declared)
    return SEGMENTS.index(dim), rank, value


def _straight_through_model(
    tallies: dict[GroupKey, _Tally], weeks: list[IsoWeek]
) -> StraightThrough:
    segments = sorted(
        (key for key, t in tallies.items() if key[0] in SEGMENTS and t.completed),
        key=_segment_order,
    )
    return StraightThrough(
        reference=StpReference(
            stp_rate_pct=REFERENCE_STP_PCT, manual_gate_rate_pct=REFERENCE_MANUAL_GATE_PCT
        ),
        overall=StpFigures.model_validate(tallies.get(OVERALL, _Tally()).figures()),
        by_segment=[
            StpSegment(dimension=dim, value=value, **tallies[(dim, value)].figures())
            for dim, value in segments
        ],
        by_week=[
            StpWeek(
                week="{}-W{:02d}".format(*w.monday.isocalendar()[:2]),
                date_from=w.start,
                date_to=w.end,
                partial=(w.end - w.start).days < 7,
                **tallies.get(w.key, _Tally()).figures(),
            )
            for w in weeks
        ],
    )


async def straight_through(
    session: AsyncSession,
    *,
    window: Window,
    client_type: ClientType | None = None,
    tier: ClientTier | None = None,
    case_type: str | None = None,
    weeks: int = DEFAULT_WEEKS,
    coverage: Coverage | None = None,
) -> StraightThrough:
    """Of the cases completed in the window (and in each of its last ``weeks`` ISO weeks):
    how many went straight through (``automated``: never paused, no human step), and the
    median time to complete; overall, by client type, tier and case type, and by week."""
    who: Who = (client_type, tier, case_type)
    shown = last_weeks(window, weeks)
    rolled = _rolled(coverage)
    if rolled is not None:
        tallies = await _stp_rolled(session, coverage=rolled, who=who, window=window, weeks=shown)
    else:
        tallies = await _stp_raw(session, window=window, who=who, weeks=shown)
    return _straight_through_model(tallies, shown)


async def _stp_raw(
    session: AsyncSession, *, window: Window, who: Who, weeks: list[IsoWeek]
) -> dict[GroupKey, _Tally]:
    """From raw rows alone: one pass over the window's completed cases, grouped five ways
    (the window, client type, tier, case type, week), ``percentile_cont`` for the medians."""
    from_week = day_start(weeks[0].start) if weeks else window.end
    week = case((Case.closed_at >= from_week, _week_of(utc_day(Case.closed_at))), else_=null())
    done = (
        select(
            Case.case_type.label("case_type"),
            Case.client_type.label("client_type"),
            Case.client_tier.label("tier"),
            week.label("week"),
            case_seconds().label("seconds"),
            automated().label("stp"),
        )
        .where(
            Case.closed_at.is_not(None),
            Case.closed_at >= window.start,
            Case.closed_at < window.end,
            completed(),
            *_case_filters(*who),
        )
        .subquery()
    )
    c = done.c
    keys = (c.case_type, c.client_type, c.tier, c.week)
    stmt = select(
        *keys,
        func.grouping(*keys),  # bit set: not grouped by (case_type 8 ... week 1)
        func.count(),
        func.count().filter(c.stp),
        func.percentile_cont(P50).within_group(c.seconds),
    ).group_by(
        func.grouping_sets(
            tuple_(), tuple_(c.client_type), tuple_(c.tier), tuple_(c.case_type), tuple_(c.week)
        )
    )
    tallies: dict[GroupKey, _Tally] = {}
    for c_type, cl_type, c_tier, monday, grouped, n, stp, median in await _core(session, stmt):
        key: GroupKey | None = {
            0b1111: OVERALL,
            0b1011: ("client_type", cl_type),
            0b1101: ("tier", c_tier),
            0b0111: ("case_type", c_type),
            0b1110: ("week", monday.isoformat()) if monday is not None else None,
        }[grouped]
        if key is not None:  # None: before the weeks shown
            tallies[key] = _Tally(completed=int(n), stp=int(stp), median=median)
    return tallies


async def _stp_rolled(
    session: AsyncSession,
    *,
    coverage: Coverage,
    who: Who,
    window: Window,
    weeks: list[IsoWeek],
) -> dict[GroupKey, _Tally]:
    """From the roll-up where it holds the days, raw rows for the rest, in two statements.

    1. Counts: the case totals' running rows at the bounds of the window's runs and of each
       week's part of them (signed: completed cases and their bucket counts); the daily
       straight-through counts of the rolled-up days (``STP_CASES``), by week; the raw rows'
       completed cases by week and bucket. Added up here into each group's tally.
    2. Medians: the values at the ranks ``percentile_cont(0.5)`` reads, from one bucket each
       (``_stp_rank_values``), interpolated as Postgres does."""
    shown = {w.monday: w.key for w in weeks}
    tallies: dict[GroupKey, _Tally] = {}
    for row in await _core(session, _stp_counts_stmt(coverage, who, tuple(weeks))):
        part, monday, c_type, cl_type, c_tier, sign, n, stp, first_bucket, counts = row
        keys: list[GroupKey] = []
        if part <= 0:  # the whole window
            keys += [OVERALL, ("client_type", cl_type), ("tier", c_tier), ("case_type", c_type)]
        if part > 0:  # a week's runs
            keys.append(weeks[part - 1].key)
        elif part < 0 and monday in shown:  # a day's (or a raw row's) own week
            keys.append(shown[monday])
        for key in keys:
            tally = tallies.setdefault(key, _Tally())
            tally.completed += sign * n
            tally.stp += sign * stp
            _add_counts(tally.buckets, first_bucket, counts, sign)
    # the medians: where percentile_cont(0.5) reads, then those values
    first_day, stop = window.start.date(), window.end.date()
    spans = {w.key: (w.start, w.end) for w in weeks}
    requests: list[tuple[str, str, date, date, int, int, int]] = []
    plans: list[tuple[_Tally, _Ranks, list[int]]] = []
    whole = tallies.get(OVERALL, _Tally())
    # a group with all the window's cases (one client type, one week, ...) has its median
    same = {key for key, t in tallies.items() if key != OVERALL and t.completed == whole.completed}
    for key, tally in tallies.items():
        buckets = _nonzero(tally.buckets)
        if not buckets or key in same:
            continue
        plan = _ranks(buckets, P50)
        lo, hi = spans.get(key, (first_day, stop))
        at = len(requests)
        requests += [(*key, lo, hi, *read) for read in plan.reads]
        plans.append((tally, plan, list(range(at, len(requests)))))
    values = await _stp_rank_values(session, coverage=coverage, who=who, requests=requests)
    for tally, plan, asked in plans:
        tally.median = plan.value([x for k in asked for x in values[k]])
    for key in same:
        tallies[key].median = whole.median
    return tallies


@_kept
def _stp_counts_stmt(coverage: Coverage, who: Who, weeks: tuple[IsoWeek, ...]) -> Any:
    """``_stp_rolled``'s counts. The rolled-up days' straight-through counts come by week
    only for the weeks shown (the earlier ones together), so a year is a few dozen rows."""
    slices = [coverage, *(_clip(coverage, w.start, w.end) for w in weeks)]
    days: list[date] = []
    ids: list[int] = []
    signs: list[int] = []
    for i, part in enumerate(slices):
        plus, minus = run_bounds(part.runs)
        for bound, sign in ((plus, 1), (minus, -1)):
            days += bound
            ids += [i] * len(bound)
            signs += [sign] * len(bound)
    t, v = CASE_TOTALS.c, VALUES.c
    bounds = (
        func.unnest(
            bindparam("bound_days", days, type_=DATES),
            bindparam("bound_slices", ids, type_=INTEGERS),
            bindparam("bound_signs", signs, type_=INTEGERS),
        )
        .table_valued("day", "slice", "sign")
        .render_derived(name="bounds")
    )
    no_week, no_counts = cast(null(), DAY), cast(null(), INTEGERS)
    totals = (
        select(
            bounds.c.slice,
            no_week,
            t.case_type,
            t.client_type,
            t.tier,
            bounds.c.sign,
            t.completed_cases,
            literal_column("0", BIGINT),
            t.first_bucket,
            t.counts,
        )
        .select_from(CASE_TOTALS)
        .join(bounds, t.day == bounds.c.day)
        .where(*_segment_filters(t, who))
    )
    rolled_week = _week_of(v.day)
    if weeks:  # the weeks shown, the earlier ones together (NULL)
        rolled_week = case((rolled_week >= weeks[0].monday, rolled_week), else_=null())
    else:
        rolled_week = no_week
    stp_days = (
        select(
            literal_column("-1", INTEGER),
            rolled_week,
            v.case_type,
            v.client_type,
            v.tier,
            literal_column("1", INTEGER),
            literal_column("0", BIGINT),
            cast(func.sum(v.n), BIGINT),
            literal_column("0", INTEGER),
            no_counts,
        )
        .where(
            v.metric == STP_CASES,
            v.stage == "",
            v.bucket == 0,
            rolled_days(v.day, coverage.runs),
            *_segment_filters(v, who),
        )
        .group_by(rolled_week, v.case_type, v.client_type, v.tier)
    )
    parts: list[Any] = [totals, stp_days]
    if coverage.raw:
        b = _bucket(case_seconds())
        raw_week = _week_of(utc_day(Case.closed_at))
        parts.append(
            select(
                literal_column("-1", INTEGER),
                raw_week,
                Case.case_type,
                Case.client_type,
                Case.client_tier,
                literal_column("1", INTEGER),
                func.count(),
                func.count().filter(automated()),
                b,
                array([cast(func.count(), INTEGER)]),
            )
            .where(raw_ranges(Case.closed_at, coverage.raw), completed(), *_case_filters(*who))
            .group_by(raw_week, Case.case_type, Case.client_type, Case.client_tier, b)
        )
    first, *more = parts
    return first.union_all(*more)


async def _stp_rank_values(
    session: AsyncSession,
    *,
    coverage: Coverage,
    who: Who,
    requests: list[tuple[str, str, date, date, int, int, int]],
) -> list[list[float]]:
    """For each (dimension, value, first day, stop day, bucket, offset, count): the ``count``
    completed cases' seconds from ``offset`` on among the group's (a week's: closed in those
    days) with seconds in that bucket, sorted ascending (``dashboard_values`` for the
    rolled-up days, raw rows for the rest).

    Each request reads its own group's values of its bucket (a lateral subquery: the
    bucket, the days and the group's column narrow the index scan of ``dashboard_values``);
    each request's values get a running count in ascending order, and only the rows holding
    the ranks asked for come back, as (value, repeats, running count): no row is copied ``n``
    times. (Reading the wanted buckets once and hash-joining them to every kind of group
    passed each value through every group it is in and cost several times as much.)"""
    if not requests:
        return []
    columns = ("dims", "vals", "los", "his", "buckets", "offsets", "counts")
    params = dict(zip(columns, (list(col) for col in zip(*requests, strict=True)), strict=True))
    return await _at_ranks(session, _stp_rank_values_stmt(coverage, who), params, len(requests))


@_kept
def _stp_rank_values_stmt(coverage: Coverage, who: Who) -> Any:
    req = (
        func.unnest(
            bindparam("dims", type_=TEXTS),
            bindparam("vals", type_=TEXTS),
            bindparam("los", type_=DATES),
            bindparam("his", type_=DATES),
            bindparam("buckets", type_=INTEGERS),
            bindparam("offsets", type_=INTEGERS),
            bindparam("counts", type_=INTEGERS),
        )
        .table_valued("dim", "val", "lo", "hi", "b", "off", "cnt", with_ordinality="k")
        .render_derived(name="req")
    )
    r = req.c

    def of_group(case_type: Any, client_type: Any, tier: Any) -> list[Any]:
        """The request's group: a condition per kind of group, true for the others."""
        return [
            or_(r.dim != dim, column == r.val)
            for dim, column in (
                ("client_type", client_type),
                ("tier", tier),
                ("case_type", case_type),
            )
        ]

    v = VALUES.c
    parts: list[Any] = [
        select(v.seconds.label("s"), v.n.label("n")).where(
            v.metric == CASE_SECONDS,
            v.stage == "",
            v.bucket == r.b,
            rolled_days(v.day, coverage.runs),
            v.day >= r.lo,
            v.day < r.hi,
            *_segment_filters(v, who),
            *of_group(v.case_type, v.client_type, v.tier),
        )
    ]
    if coverage.raw:
        seconds = case_seconds()
        raw = _materialized(
            select(
                seconds.label("s"),
                _bucket(seconds).label("b"),
                utc_day(Case.closed_at).label("day"),
                Case.case_type,
                Case.client_type,
                Case.client_tier,
            ).where(raw_ranges(Case.closed_at, coverage.raw), completed(), *_case_filters(*who)),
            "raw_cases",
        ).c
        parts.append(
            select(raw.s, literal_column("1", INTEGER)).where(
                raw.b == r.b,
                raw.day >= r.lo,
                raw.day < r.hi,
                *of_group(raw.case_type, raw.client_type, raw.client_tier),
            )
        )
    return _ranks_stmt(req, parts)


def _materialized(stmt: Any, name: str) -> Any:
    """The raw rows of the window's other days as a CTE computed once per statement (the
    lateral subqueries read it for every request; inlined, each would scan and bucket the
    raw rows again)."""
    return stmt.cte(name).prefix_with("MATERIALIZED")


_SNAPSHOT = text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")


async def begin_snapshot(session: AsyncSession) -> None:
    """Make the session's (just begun) transaction a read-only snapshot with custom plans.

    REPEATABLE READ keeps the figures of one page consistent with each other (and the roll-up
    consistent with the raw rows it stands for). asyncpg reuses prepared statements per
    connection, and after five runs Postgres may switch to a generic plan that ignores the
    window's bounds (a 1-day and a 1-year window need different plans); planning costs well
    under a millisecond here, so always plan for the actual values. (The more so as the kept
    statements send the p90s' and medians' requests, and the bucket edges, as parameters: the
    same prepared statement runs with other buckets and offsets. The edges are a parameter,
    not ``dashboard_bucket``, because planning that SQL function parses its body again.)
    """
    await _core(session, _SNAPSHOT)
    await _core(session, _CUSTOM_PLANS)


_EXPORT_SNAPSHOT = text("SELECT pg_export_snapshot()")
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+")  # e.g. 00000003-0000001B-1
_SECONDS_IN_USE: dict[int, int] = {}  # id(pool) -> second connections held by dashboards now


def _may_take_second(engine: AsyncEngine) -> bool:
    """Whether a dashboard may take a second connection from ``engine``'s pool now.

    A dashboard holding one connection and waiting for another must never wait on the pool:
    were every connection held by dashboards waiting for a second, none would come (until the
    pool's timeout failed them all). So a second connection is taken only while fewer than
    half the pool's connections are checked out, and by at most half the pool's size of
    dashboards at once; otherwise the page runs on its one connection. A pool without a
    size (``NullPool``) opens connections as asked."""
    pool = engine.sync_engine.pool
    size = getattr(pool, "size", None)
    checkedout = getattr(pool, "checkedout", None)
    if not callable(size) or not callable(checkedout):
        return True
    limit = int(size()) // 2
    return _SECONDS_IN_USE.get(id(pool), 0) < limit and int(checkedout()) < limit


@contextlib.asynccontextmanager
async def _beside(session: AsyncSession) -> AsyncIterator[AsyncSession | None]:
    """A second session in the snapshot of ``session``'s (begun) transaction, so statements
    that do not wait on each other run at once on two connections and every figure still
    comes from one snapshot (``pg_export_snapshot``, then ``SET TRANSACTION SNAPSHOT``).
    The exporting transaction must stay open until the second is done with it. None when
    ``session`` is bound to one connection rather than to a pool (then there is no second
    connection to have, nor one that would see that connection's uncommitted rows), or when
    the pool is busy (``_may_take_second``)."""
    engine = session.bind
    if not isinstance(engine, AsyncEngine) or not _may_take_second(engine):
        yield None
        return
    pool = id(engine.sync_engine.pool)
    _SECONDS_IN_USE[pool] = _SECONDS_IN_USE.get(pool, 0) + 1  # before any await: no race
    try:
        snapshot = str((await _core(session, _EXPORT_SNAPSHOT)).scalar_one())
        if not _SNAPSHOT_ID.fullmatch(snapshot):  # Postgres's own id; inlined, so checked
            raise ValueError(f"unexpected snapshot id {snapshot!r}")
        async with AsyncSession(engine) as other, other.begin():
            await _core(other, _SNAPSHOT)
            # a new statement text every time: sent as is (asyncpg's simple protocol), not
            # compiled and kept by SQLAlchemy nor prepared and kept by asyncpg
            raw = (await (await other.connection()).get_raw_connection()).driver_connection
            assert raw is not None  # a live asyncpg connection, checked out just now
            await raw.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            await _core(other, _CUSTOM_PLANS)
            yield other
    finally:
        left = _SECONDS_IN_USE[pool] - 1
        if left:
            _SECONDS_IN_USE[pool] = left
        else:
            del _SECONDS_IN_USE[pool]


async def build_dashboard(
    session: AsyncSession,
    *,
    date_from: date,
    date_to: date,
    client_type: ClientType | None = None,
    tier: ClientTier | None = None,
    case_type: str | None = None,
    stage_order: Sequence[str] = (),
    at_risk_limit: int = 50,
    weeks: int = DEFAULT_WEEKS,
    use_rollup: bool = True,
) -> Dashboard:
    """Every dashboard figure from one consistent, read-only snapshot; the days the roll-up
    holds come from it (``use_rollup=False``: raw rows only, the same answer, slower).
    ``weeks``: how many of the window's last ISO weeks the straight-through figures show."""
    window = Window.from_dates(date_from, date_to)
    started = datetime.now(UTC)
    async with session.begin():
        await begin_snapshot(session)
        coverage = await read_coverage(session, window.start, window.end) if use_rollup else None
        who: dict[str, Any] = {"client_type": client_type, "tier": tier, "case_type": case_type}
        rolled = _rolled(coverage)

        async def stp_on(on: AsyncSession) -> StraightThrough:
            return await straight_through(on, window=window, weeks=weeks, coverage=coverage, **who)

        if rolled is not None:  # the same figures, in fewer statements
            segment: Who = (client_type, tier, case_type)
            metrics = (STAGE_ACTIVE, CASE_SECONDS)
            async with _beside(session) as other:
                # the straight-through figures (the longest part) need nothing of the p90s:
                # on the second connection they run while the first does the rest
                side = asyncio.ensure_future(stp_on(other)) if other is not None else None
                try:
                    p90 = await _p90s(session, metrics=metrics, coverage=rolled, who=segment)
                    stages = await _stage_stats_rolled(
                        session, coverage=rolled, who=segment, stage_order=stage_order, p90=p90
                    )
                    e2e, auto, scores = await _case_figures(
                        session, coverage=rolled, who=segment, p90=p90
                    )
                    risk = await at_risk_now(session, limit=at_risk_limit, **who)
                    stp = await side if side is not None else await stp_on(session)
                finally:
                    if side is not None:  # finished or not: its outcome is collected here
                        side.cancel()
                        await asyncio.gather(side, return_exceptions=True)
        else:
            stages = await stage_stats(session, window=window, stage_order=stage_order, **who)
            e2e = await end_to_end(session, window=window, **who)
            auto = await automation(session, window=window, **who)
            scores = await nps(session, window=window, **who)
            stp = await stp_on(session)
            risk = await at_risk_now(session, limit=at_risk_limit, **who)
    log.info(
        "dashboard from=%s to=%s client_type=%s tier=%s case_type=%s stages=%d "
        "rolled_days=%d ms=%.1f",
        date_from,
        date_to,
        client_type,
        tier,
        case_type,
        len(stages),
        sum((b - a).days + 1 for a, b in coverage.runs) if coverage else 0,
        (datetime.now(UTC) - started).total_seconds() * 1000,
    )
    return Dashboard(
        filters=DashboardFilters(
            date_from=date_from,
            date_to=date_to,
            client_type=client_type,
            tier=tier,
            case_type=case_type,
            weeks=weeks,
        ),
        generated_at=started,
        stages=stages,
        bottlenecks=rank_bottlenecks(stages),
        end_to_end=e2e,
        at_risk=risk,
        automation=auto,
        nps=scores,
        straight_through=stp,
    )
