"""Case history in Postgres (``history_intervals``): what ETA, breach prediction and what-if
read. The CSV format and the in-memory record are ``schemas.history``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.history import StageInterval
from store.models import HistoryInterval


def to_interval(row: HistoryInterval) -> StageInterval:
    return StageInterval(
        case_ref=row.case_ref,
        case_type=row.case_type,
        client_type=row.client_type,
        tier=row.tier,
        country=row.country,
        service_requirements=tuple(row.service_requirements or ()),
        documents_submitted_at_creation=row.documents_submitted_at_creation,
        created_at=row.created_at,
        stage=row.stage,
        entered_at=row.entered_at,
        exited_at=row.exited_at,
        outcome=row.outcome,
        breached=row.breached,
    )


async def load(
    session: AsyncSession,
    *,
    case_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[StageInterval]:
    """Stage intervals of cases created in [since, until), ordered by case then time."""
    query = select(HistoryInterval)
    if case_type is not None:
        query = query.where(HistoryInterval.case_type == case_type)
    if since is not None:
        query = query.where(HistoryInterval.created_at >= since)
    if until is not None:
        query = query.where(HistoryInterval.created_at < until)
    query = query.order_by(HistoryInterval.case_ref, HistoryInterval.entered_at)
    result = await session.stream_scalars(query.execution_options(yield_per=5000))
    return [to_interval(row) async for row in result]
