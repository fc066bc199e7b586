"""The SLA-by-stage dashboard: every figure is aggregated by Postgres, never in Python.

The read model can hold millions of stage visits, so each metric is one SQL statement
(aggregates, ``FILTER``, ``percentile_cont``, window functions) and only a few result rows
cross the wire. All statements run in one read-only REPEATABLE READ transaction, so the
figures on one page come from the same snapshot.

Windows are half-open ``[from, to)`` in UTC: stage visits count by ``exited_at``, cases by
``closed_at``, NPS answers by ``submitted_at``. "At risk now" ignores the window (it is about
now) but honours the client filters.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    Text,
    and_,
    cast,
    exists,
    extract,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.enums import ClientTier, ClientType
from store.models import Case, CaseEvent, NpsResponse, StageIntervalRow

log = logging.getLogger(__name__)

SLA_OUTCOMES = ("met", "warned", "breached")  # "none" / NULL: the visit had no SLA
WITHIN_SLA = ("met", "warned")
MANUAL_EVENT_KINDS = ("compliance_decision", "documents_waived", "sent_back")
CLOSED_STATUSES = ("completed", "rejected", "cancelled", "closed")  # frozen three + engine
AT_RISK_STATES = ("warning", "at_risk", "breached")
DEFAULT_DAYS = 30

_S = TypeVar("_S", bound=Select)


def _in_list(column: str, values: tuple[str, ...], *, negate: bool = False) -> Any:
    """A constant IN list rendered as literals, not bind parameters: the partial indexes of
    migration 0005 repeat these predicates and the planner only matches them on constants."""
    quoted = ", ".join(f"'{v}'" for v in values)  # our own constants, never caller input
    return text(f"{column} {'NOT IN' if negate else 'IN'} ({quoted})")


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
    return cast(100.0 * part / func.nullif(whole, 0), Float)


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
        func.array_position(cast(array(list(order), type_=Text), ARRAY(Text)), cast(column, Text)),
        len(order) + 1,
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
) -> list[StageStats]:
    """Per-stage visits, SLA compliance, breaches and active-time distribution, in process
    order: the case types' declared order (``stage_order``), then by first appearance (the
    earliest visit), so any stage string works. Window functions over the grouped rows rank
    the stages by total active time and by breaches (ties in process order) in the same pass
    over the fact table."""
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
        func.percentile_cont(0.9).within_group(si.active_seconds).label("p90_active_seconds"),
        total_active.label("total_active_seconds"),
        func.row_number().over(order_by=(total_active.desc(), *process)).label("time_rank"),
        func.row_number().over(order_by=(breaches.desc(), *process)).label("breach_rank"),
    ).where(si.exited_at.is_not(None), si.exited_at >= window.start, si.exited_at < window.end)
    stmt = _joined_when_filtered(stmt, si.case_ref, client_type, tier, case_type)
    stmt = stmt.group_by(si.stage).order_by(*process)
    rows = (await session.execute(stmt)).mappings().all()
    return [StageStats.model_validate(dict(r)) for r in rows]


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


async def end_to_end(
    session: AsyncSession,
    *,
    window: Window,
    client_type: ClientType | None = None,
    tier: ClientTier | None = None,
    case_type: str | None = None,
) -> EndToEnd:
    """Completed cases closed in the window and how long their work took: created→resolved
    for engine cases (they close ``close_after`` days later), created→closed before it."""
    finished = func.coalesce(Case.resolved_at, Case.closed_at)
    seconds = cast(extract("epoch", finished - Case.created_at), Float)
    stmt = select(
        func.count().label("completed_cases"),
        cast(func.avg(seconds), Float).label("avg_seconds"),
        func.percentile_cont(0.9).within_group(seconds).label("p90_seconds"),
    ).where(
        Case.closed_at.is_not(None),
        Case.closed_at >= window.start,
        Case.closed_at < window.end,
        or_(
            Case.status == "completed",
            and_(Case.status == "closed", Case.resolution == "completed"),
        ),
        *_case_filters(client_type, tier, case_type),
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
) -> Automation:
    """Share of cases closed in the window that were never paused and had no manual event."""
    manual_event = exists().where(
        CaseEvent.case_ref == Case.ref,
        _in_list("case_events.kind", MANUAL_EVENT_KINDS),
    )
    automated = func.count().filter(and_(Case.ever_paused.is_(False), ~manual_event))
    stmt = select(
        func.count().label("closed_cases"),
        automated.label("automated_cases"),
        _pct(automated, func.count()).label("automation_rate_pct"),
    ).where(
        Case.closed_at.is_not(None),
        Case.closed_at >= window.start,
        Case.closed_at < window.end,
        *_case_filters(client_type, tier, case_type),
    )
    row = (await session.execute(stmt)).mappings().one()
    closed, auto = int(row["closed_cases"]), int(row["automated_cases"])
    rate = row["automation_rate_pct"]
    return Automation(
        closed_cases=closed,
        automated_cases=auto,
        manual_cases=closed - auto,
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
) -> Nps:
    """Net Promoter Score of answers submitted in the window (promoters 9-10, detractors 0-6)."""
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
    stmt = _joined_when_filtered(stmt, n.case_ref, client_type, tier, case_type)
    row = (await session.execute(stmt)).mappings().one()
    return Nps.model_validate(dict(row))


async def begin_snapshot(session: AsyncSession) -> None:
    """Make the session's (just begun) transaction a read-only snapshot with custom plans.

    REPEATABLE READ keeps the figures of one page consistent with each other. asyncpg reuses
    prepared statements per connection, and after five runs Postgres may switch to a generic
    plan that ignores the window's bounds (a 1-day and a 1-year window need different plans);
    planning costs well under a millisecond here, so always plan for the actual values.
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
) -> Dashboard:
    """Every dashboard figure from one consistent, read-only snapshot."""
    window = Window.from_dates(date_from, date_to)
    started = datetime.now(UTC)
    async with session.begin():
        await begin_snapshot(session)
        who: dict[str, Any] = {"client_type": client_type, "tier": tier, "case_type": case_type}
        stages = await stage_stats(session, window=window, stage_order=stage_order, **who)
        e2e = await end_to_end(session, window=window, **who)
        risk = await at_risk_now(session, limit=at_risk_limit, **who)
        auto = await automation(session, window=window, **who)
        scores = await nps(session, window=window, **who)
    log.info(
        "dashboard from=%s to=%s client_type=%s tier=%s case_type=%s stages=%d ms=%.1f",
        date_from,
        date_to,
        client_type,
        tier,
        case_type,
        len(stages),
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
