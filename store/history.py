"""Case history in Postgres (``history_intervals``): what ETA, breach prediction and what-if
read. The CSV format and the in-memory record are ``schemas.history``.

Rows arrive two ways (``source``):

- ``recorded``: ``record_closed_case``, called by the engine's read-model write in the same
  transaction that moves a case to closed or cancelled;
- ``imported``: ``insert_intervals``, behind ``onboarding history import``.

Both are idempotent on (case_ref, stage, entered_at): a stage interval already held is left
as it is, whichever way it came first.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, TextIO

from sqlalchemy import Table, bindparam, delete, exists, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.history import COLUMNS, StageInterval
from store.models import Case, DocumentRow, HistoryInterval, StageIntervalRow

RECORDED, IMPORTED = "recorded", "imported"
VISIT_CONSTRAINT = "uq_history_intervals_visit"
BATCH = 2000  # rows handed to the driver at a time
STREAM_BATCH = 5000
ENDED_STATUSES = ("closed", "cancelled")
DOCUMENTS_AT_CREATION = timedelta(minutes=10)
"""A document uploaded within this long of the case's creation counts as submitted with it."""

# stage_intervals.outcome (the engine's visit outcome) -> the CSV's outcome. A visit that
# ended with the case resolving (``resolved``, or an approval's rejection resolution such as
# ``rejected``) completed its stage; ``reopened`` ends a visit the same way.
_OUTCOMES = {
    "completed": "completed",
    "resolved": "completed",
    "reopened": "completed",
    "sent_back": "sent_back",
    "cancelled": "cancelled",
    "skipped": "skipped",
    "not_applicable": "skipped",
}

HISTORY: Table = HistoryInterval.__table__  # type: ignore[assignment]  # Core: no ORM overhead


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


_COLUMNS = (
    HISTORY.c.case_ref,
    HISTORY.c.case_type,
    HISTORY.c.client_type,
    HISTORY.c.tier,
    HISTORY.c.country,
    HISTORY.c.service_requirements,
    HISTORY.c.documents_submitted_at_creation,
    HISTORY.c.created_at,
    HISTORY.c.stage,
    HISTORY.c.entered_at,
    HISTORY.c.exited_at,
    HISTORY.c.outcome,
    HISTORY.c.breached,
)
"""In ``StageInterval``'s field order: plain column tuples, no ORM objects (half the time for
the hundreds of thousands of rows a what-if reads)."""


def _query(case_type: str | None, since: datetime | None, until: datetime | None) -> Any:
    query = select(*_COLUMNS)
    if case_type is not None:
        query = query.where(HISTORY.c.case_type == case_type)
    if since is not None:
        query = query.where(HISTORY.c.created_at >= since)
    if until is not None:
        query = query.where(HISTORY.c.created_at < until)
    return query.order_by(
        HISTORY.c.case_ref, HISTORY.c.entered_at, HISTORY.c.stage
    ).execution_options(yield_per=STREAM_BATCH)


def _from_columns(row: Any) -> StageInterval:
    (
        ref,
        ctype,
        client,
        tier,
        country,
        needs,
        docs,
        created,
        stage,
        entered,
        exited,
        outcome,
        breached,
    ) = row
    return StageInterval(
        ref,
        ctype,
        client,
        tier,
        country,
        tuple(needs or ()),
        docs,
        created,
        stage,
        entered,
        exited,
        outcome,
        breached,
    )


async def stream(
    session: AsyncSession,
    *,
    case_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AsyncIterator[StageInterval]:
    """Stage intervals of cases created in [since, until), ordered by case then time, read
    a batch at a time (a server-side cursor: never the whole table in memory)."""
    result = await session.stream(_query(case_type, since, until))
    async for partition in result.partitions(STREAM_BATCH):
        for row in partition:
            yield _from_columns(row)


async def load(
    session: AsyncSession,
    *,
    case_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[StageInterval]:
    """Stage intervals of cases created in [since, until), ordered by case then time."""
    return [i async for i in stream(session, case_type=case_type, since=since, until=until)]


async def export_csv(
    session: AsyncSession,
    target: TextIO,
    *,
    case_type: str | None = None,
    since: datetime | None = None,
) -> int:
    """Write the history CSV (header, then rows by case then time), streaming; the count."""
    writer = csv.writer(target, lineterminator="\n")
    writer.writerow(COLUMNS)
    n = 0
    async for interval in stream(session, case_type=case_type, since=since):
        writer.writerow(interval.as_row())
        n += 1
    return n


def _values(interval: StageInterval, source: str) -> dict[str, Any]:
    return {
        "case_ref": interval.case_ref,
        "case_type": interval.case_type,
        "client_type": interval.client_type,
        "tier": interval.tier,
        "country": interval.country,
        "service_requirements": list(interval.service_requirements),
        "documents_submitted_at_creation": interval.documents_submitted_at_creation,
        "created_at": interval.created_at,
        "stage": interval.stage,
        "entered_at": interval.entered_at,
        "exited_at": interval.exited_at,
        "outcome": interval.outcome,
        "breached": interval.breached,
        "source": source,
    }


def _chunks(items: Iterable[StageInterval], size: int) -> Iterator[list[StageInterval]]:
    chunk: list[StageInterval] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def insert_intervals(
    session: AsyncSession,
    intervals: Iterable[StageInterval],
    *,
    source: str = IMPORTED,
    batch: int = BATCH,
) -> int:
    """Insert stage intervals ``batch`` rows at a time, skipping any already held (same
    case_ref, stage, entered_at); the number new. The caller owns the transaction.

    One cached statement executed with a list of rows: SQLAlchemy sends it as multi-row
    INSERTs ("insertmanyvalues"), and RETURNING names only the rows that went in. (A
    ``.values([...])`` statement per chunk compiles anew each time: about 4x slower.)"""
    statement = (
        insert(HISTORY).on_conflict_do_nothing(constraint=VISIT_CONSTRAINT).returning(HISTORY.c.id)
    )
    new = 0
    for chunk in _chunks(intervals, batch):
        result = await session.execute(statement, [_values(i, source) for i in chunk])
        new += len(result.all())
    return new


def history_outcome(outcome: str | None) -> str:
    """The CSV outcome of an engine visit outcome (see ``_OUTCOMES``); anything else ended
    the stage's work, so ``completed``."""
    return _OUTCOMES.get(outcome or "", "completed")


def _requirement(key: str) -> str:
    """Profile requirement codes may use hyphens (``mifid-ii``); the CSV's keys do not."""
    return key.strip().lower().replace("-", "_")


async def recorded_intervals(session: AsyncSession, case_ref: str) -> list[StageInterval]:
    """What ``record_closed_case`` would write for an ended case (none for one still open).

    - creation facts from the ``cases`` row: client_type, client_tier as ``tier``, country,
      the profile's ``regulatory_requirements`` as ``service_requirements``;
    - ``documents_submitted_at_creation``: a ``documents`` row uploaded within
      ``DOCUMENTS_AT_CREATION`` (10 minutes) of the case's ``created_at``;
    - ``created_at``: the case row's, or the first visit's ``entered_at`` when that is
      earlier (a case row inserted by the engine's first projection can be written a moment
      after the workflow entered its first stage);
    - one row per ``stage_intervals`` visit with an ``exited_at`` (an unfinished visit is
      not history), outcome by ``history_outcome``, ``breached`` when its SLA outcome was.
    """
    case = (
        await session.execute(
            select(
                Case.status,
                Case.case_type,
                Case.client_type,
                Case.client_tier,
                Case.country,
                Case.profile,
                Case.created_at,
            ).where(Case.ref == case_ref)
        )
    ).one_or_none()
    if case is None or case.status not in ENDED_STATUSES:
        return []
    visits: Sequence[StageIntervalRow] = (
        await session.scalars(
            select(StageIntervalRow)
            .where(StageIntervalRow.case_ref == case_ref, StageIntervalRow.exited_at.is_not(None))
            .order_by(StageIntervalRow.seq)
        )
    ).all()
    if not visits:
        return []
    documents = bool(
        await session.scalar(
            select(
                exists().where(
                    DocumentRow.case_ref == case_ref,
                    DocumentRow.uploaded_at <= case.created_at + DOCUMENTS_AT_CREATION,
                )
            )
        )
    )
    profile = case.profile or {}
    requirements = tuple(
        sorted({_requirement(k) for k in profile.get("regulatory_requirements") or () if k})
    )
    created_at = min([case.created_at, *(v.entered_at for v in visits)])
    out: list[StageInterval] = []
    for visit in visits:
        assert visit.exited_at is not None  # filtered above
        out.append(
            StageInterval(
                case_ref=case_ref,
                case_type=case.case_type,
                client_type=case.client_type,
                tier=case.client_tier,
                country=case.country,
                service_requirements=requirements,
                documents_submitted_at_creation=documents,
                created_at=created_at,
                stage=visit.stage,
                entered_at=visit.entered_at,
                exited_at=visit.exited_at,
                outcome=history_outcome(visit.outcome),
                breached=visit.sla_outcome == "breached",
            )
        )
    return out


async def record_closed_case(session: AsyncSession, case_ref: str) -> int:
    """Record an ended (closed or cancelled) case's finished stage visits as history
    (source ``recorded``), in the caller's transaction; the number of new rows. Idempotent:
    a visit already held is not added again, so calling it again (a replayed or rebuilt
    projection) adds nothing. A case that has not ended records nothing.

    A later write of the same end can carry other times: a workflow task that failed after
    its local activity wrote the end (the server took an event in the meantime) runs again at
    a later workflow time. The recorded rows follow the read model then: a visit's new end
    is written over the old, and a row of a visit whose start moved too (entered and ended
    in that one task) is replaced. Imported rows are never touched."""
    intervals = await recorded_intervals(session, case_ref)
    new = await insert_intervals(session, intervals, source=RECORDED)
    if intervals:
        visits = [(i.stage, i.entered_at) for i in intervals]
        await session.execute(
            delete(HISTORY).where(
                HISTORY.c.case_ref == case_ref,
                HISTORY.c.source == RECORDED,
                tuple_(HISTORY.c.stage, HISTORY.c.entered_at).not_in(visits),
            )
        )
        await session.execute(
            _FOLLOW_READ_MODEL,
            [
                {
                    "ref": i.case_ref,
                    "st": i.stage,
                    "entered": i.entered_at,
                    "exited": i.exited_at,
                    "out": i.outcome,
                    "br": i.breached,
                }
                for i in intervals
            ],
        )
    return new


_FOLLOW_READ_MODEL = (
    update(HISTORY)
    .where(
        HISTORY.c.case_ref == bindparam("ref"),
        HISTORY.c.stage == bindparam("st"),
        HISTORY.c.entered_at == bindparam("entered"),
        HISTORY.c.source == RECORDED,
        or_(
            HISTORY.c.exited_at != bindparam("exited"),
            HISTORY.c.outcome != bindparam("out"),
            HISTORY.c.breached != bindparam("br"),
        ),
    )
    .values(exited_at=bindparam("exited"), outcome=bindparam("out"), breached=bindparam("br"))
)
"""A recorded visit whose end a later write changed: one executemany per closing write."""
