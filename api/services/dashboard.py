"""The SLA-by-stage dashboard: every figure is aggregated by Postgres, never in Python.

The read model can hold millions of stage visits, so each metric is one SQL statement
(aggregates, ``FILTER``, ``percentile_cont``, window functions) and only a few result rows
cross the wire. All statements run in one read-only REPEATABLE READ transaction, so the
figures on one page come from the same snapshot.

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
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
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
    func,
    literal,
    null,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, array
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.enums import ClientTier, ClientType
from store.dashboard_rollup import (
    CASE_SECONDS,
    SLA_OUTCOMES,
    STAGE_ACTIVE,
    WITHIN_SLA,
    Coverage,
    automated,
    bucket,
    case_seconds,
    completed,
    in_list,
    raw_ranges,
    read_coverage,
    rolled_days,
    run_bounds,
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
# Type instances made once: SQLAlchemy works out the cache key of every new type instance
# again, which took longer than some of the queries they are in.
FLOAT, BIGINT, TEXT, INTEGER = Float(), BigInteger(), Text(), Integer()
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


class DashboardFilters(BaseModel):
    date_from: date
    date_to: date
    client_type: ClientType | None = None
    tier: ClientTier | None = None
    case_type: str | None = None


class Dashboard(BaseModel):
    filters: DashboardFilters
    generated_at: datetime
    stages: list[StageStats]
    bottlenecks: Bottlenecks
    end_to_end: EndToEnd
    at_risk: AtRisk
    automation: Automation
    nps: Nps


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


async def _core(session: AsyncSession, stmt: Any) -> Any:
    """Run a Core statement on the session's connection (the ORM's execution path costs a
    few milliseconds a dashboard for nothing here: these statements load no objects)."""
    return await (await session.connection()).execute(stmt)


def _on_days(day: Any, days: list[date]) -> Any:
    """``day = ANY(array)``: one array parameter (an IN list of parameters is expanded into
    the statement's text on every run, which cost milliseconds here)."""
    return day == any_(literal(days, DATES))


def _sign(day: Any, plus: list[date]) -> Any:
    """+1 on a run's last day, -1 on the day before its first (see ``run_bounds``)."""
    return case((_on_days(day, plus), 1), else_=-1)


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
    session: AsyncSession, *, dists: Sequence[_Distribution], coverage: Coverage, who: Who
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
    hist = await _bucket_counts(session, dists=dists, coverage=coverage, who=who)
    requests: list[tuple[str, str, int, int, int]] = []  # metric, group, bucket, offset, count
    ranks: dict[tuple[str, str], tuple[float, int, int, list[int]]] = {}
    for key, buckets in hist.items():
        total = sum(n for _, n in buckets)
        pos = P90 * (total - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        (b_lo, off_lo), (b_hi, off_hi) = _locate(buckets, lo), _locate(buckets, hi)
        first = len(requests)
        if b_lo == b_hi:  # one read: the values at both ranks
            requests.append((*key, b_lo, off_lo, hi - lo + 1))
        else:
            requests += [(*key, b_lo, off_lo, 1), (*key, b_hi, off_hi, 1)]
        ranks[key] = (pos, lo, hi, list(range(first, len(requests))))
    values = await _rank_values(session, dists=dists, coverage=coverage, who=who, requests=requests)
    out: P90s = {}
    for key, (pos, lo, hi, asked) in ranks.items():
        got = [x for k in asked for x in values[k]]
        out[key] = got[0] if hi == lo else got[0] + ((pos - lo) * (got[1] - got[0]))
    return out


async def _bucket_counts(
    session: AsyncSession, *, dists: Sequence[_Distribution], coverage: Coverage, who: Who
) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """Per metric and group, the non-empty buckets of the window in order, with counts: the
    running totals' bucket counts at the runs' bounds (signed) and the raw rows' buckets
    (as one-bucket arrays), added up here; a few hundred short arrays, already counted."""
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
        b = bucket(d.value)
        raw = select(
            literal(d.metric), d.group, literal(1), b, array([cast(func.count(), INTEGER)])
        ).where(raw_ranges(d.at, coverage.raw), *d.where)
        parts.append(d.scope(raw).group_by(d.group, b))
    u = _union(parts)
    added: dict[tuple[str, str], dict[int, int]] = {}
    for metric, grp, sign, first, counts in await _core(session, select(u)):
        into = added.setdefault((metric, grp), {})
        for i, n in enumerate(counts, start=first):
            if n:
                into[i] = into.get(i, 0) + sign * n
    counted = {key: sorted((b, n) for b, n in got.items() if n) for key, got in added.items()}
    return {key: buckets for key, buckets in counted.items() if buckets}


async def _rank_values(
    session: AsyncSession,
    *,
    dists: Sequence[_Distribution],
    coverage: Coverage,
    who: Who,
    requests: list[tuple[str, str, int, int, int]],
) -> list[list[float]]:
    """For each (metric, group, bucket, offset, count): the ``count`` values from ``offset``
    on among the window's values in that bucket, sorted ascending."""
    if not requests:
        return []
    metrics, grps, buckets, offsets, counts = (list(col) for col in zip(*requests, strict=True))
    req = (
        func.unnest(
            bindparam("metrics", metrics, type_=TEXTS),
            bindparam("grps", grps, type_=TEXTS),
            bindparam("buckets", buckets, type_=INTEGERS),
            bindparam("offsets", offsets, type_=INTEGERS),
            bindparam("counts", counts, type_=INTEGERS),
        )
        .table_valued("metric", "grp", "b", "off", "cnt", with_ordinality="k")
        .render_derived(name="req")
    )
    v = VALUES.c
    copies = func.generate_series(1, v.n).table_valued("copy").render_derived(name="copies")
    parts: list[Any] = [
        select(v.seconds.label("s"))
        .select_from(VALUES)
        .join(copies, true())
        .where(
            v.metric == req.c.metric,
            v.stage == req.c.grp,
            v.bucket == req.c.b,
            rolled_days(v.day, coverage.runs),
            *_segment_filters(v, who),
        )
    ]
    for d in dists if coverage.raw else ():
        raw = select(d.value).where(
            req.c.metric == d.metric,
            d.group == req.c.grp,
            bucket(d.value) == req.c.b,
            raw_ranges(d.at, coverage.raw),
            *d.where,
        )
        parts.append(d.scope(raw))
    first, *more = parts
    x = (first.union_all(*more) if more else first).lateral("x")
    ordered = func.array_agg(aggregate_order_by(x.c.s, x.c.s), type_=FLOATS)
    stmt = (
        select(req.c.k, ordered[req.c.off + 1 : req.c.off + req.c.cnt])
        .select_from(req)
        .join(x, true())
        .group_by(req.c.k, req.c.off, req.c.cnt)
    )
    found = {int(k): list(vals) for k, vals in await _core(session, stmt)}
    return [found[k] for k in range(1, len(requests) + 1)]


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
        p90 = await _p90s(session, dists=[_stage_active(who)], coverage=rolled, who=who)
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
    stmt = (
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
    return (await _core(session, stmt)).mappings().all()


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
    stmt = select(
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
    r = (await _core(session, stmt)).mappings().one()
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
        p90 = await _p90s(session, dists=[_case_seconds(who)], coverage=rolled, who=who)
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
    stmt = (
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
            *_case_filters(client_type, tier, case_type),
        )
        .order_by(Case.created_at.desc(), Case.ref)
        .limit(limit)
    )
    rows = (await session.execute(stmt)).mappings().all()
    total = int(rows[0]["total"]) if rows else 0
    return AtRisk(
        total=total,
        cases=[AtRiskCase.model_validate({k: r[k] for k in r if k != "total"}) for r in rows],
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


async def begin_snapshot(session: AsyncSession) -> None:
    """Make the session's (just begun) transaction a read-only snapshot with custom plans.

    REPEATABLE READ keeps the figures of one page consistent with each other (and the roll-up
    consistent with the raw rows it stands for). asyncpg reuses prepared statements per
    connection, and after five runs Postgres may switch to a generic plan that ignores the
    window's bounds (a 1-day and a 1-year window need different plans); planning costs well
    under a millisecond here, so always plan for the actual values.
    """
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


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
    use_rollup: bool = True,
) -> Dashboard:
    """Every dashboard figure from one consistent, read-only snapshot; the days the roll-up
    holds come from it (``use_rollup=False``: raw rows only, the same answer, slower)."""
    window = Window.from_dates(date_from, date_to)
    started = datetime.now(UTC)
    async with session.begin():
        await begin_snapshot(session)
        coverage = await read_coverage(session, window.start, window.end) if use_rollup else None
        who: dict[str, Any] = {"client_type": client_type, "tier": tier, "case_type": case_type}
        rolled = _rolled(coverage)
        if rolled is not None:  # the same figures, in fewer statements
            segment: Who = (client_type, tier, case_type)
            dists = [_stage_active(segment), _case_seconds(segment)]
            p90 = await _p90s(session, dists=dists, coverage=rolled, who=segment)
            stages = await _stage_stats_rolled(
                session, coverage=rolled, who=segment, stage_order=stage_order, p90=p90
            )
            e2e, auto, scores = await _case_figures(session, coverage=rolled, who=segment, p90=p90)
        else:
            stages = await stage_stats(session, window=window, stage_order=stage_order, **who)
            e2e = await end_to_end(session, window=window, **who)
            auto = await automation(session, window=window, **who)
            scores = await nps(session, window=window, **who)
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
        ),
        generated_at=started,
        stages=stages,
        bottlenecks=rank_bottlenecks(stages),
        end_to_end=e2e,
        at_risk=risk,
        automation=auto,
        nps=scores,
    )
