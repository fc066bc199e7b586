"""Fitted models in Postgres (``learned_models``): one row per (kind, version), kind ``eta`` or
``breach``. The blob is whatever the model serialises to (``analytics``: compressed JSON with
LightGBM's text format inside, never a pickle); this module neither reads nor imports it.

``save`` is idempotent: the same (kind, version) twice keeps the first row. ``latest`` is the
newest fit of a kind; ``latest_version`` the cheap question a cache asks before reloading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import LearnedModel


class Fitted(Protocol):
    """What ``save`` needs: ``analytics.common.Record`` has these fields."""

    @property
    def kind(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def fitted_at(self) -> datetime: ...
    @property
    def cases(self) -> int: ...
    @property
    def summary(self) -> dict[str, Any]: ...
    @property
    def blob(self) -> bytes: ...


@runtime_checkable
class HasRecord(Protocol):
    def to_record(self) -> Fitted: ...


@dataclass(frozen=True)
class StoredModel:
    kind: str
    version: str
    fitted_at: datetime
    cases: int
    summary: dict[str, Any]
    blob: bytes


def _json_safe(value: Any) -> Any:
    """JSONB has no NaN or infinity: they are stored as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


async def save(session: AsyncSession, model: Fitted | HasRecord) -> bool:
    """Store a fit (a record, or a model with ``to_record()``); False when that kind and
    version were stored already (nothing changes). The caller commits."""
    record = model.to_record() if isinstance(model, HasRecord) else model
    result = await session.execute(
        insert(LearnedModel)
        .values(
            kind=record.kind,
            version=record.version,
            fitted_at=record.fitted_at,
            cases=record.cases,
            summary=_json_safe(record.summary),
            blob=record.blob,
        )
        .on_conflict_do_nothing(constraint="uq_learned_models_kind_version")
        .returning(LearnedModel.id)
    )
    return result.scalar_one_or_none() is not None


def _newest(kind: str) -> Any:
    return (
        select(LearnedModel)
        .where(LearnedModel.kind == kind)
        .order_by(LearnedModel.fitted_at.desc(), LearnedModel.id.desc())
        .limit(1)
    )


async def latest(session: AsyncSession, kind: str = "eta") -> StoredModel | None:
    """The newest fit of ``kind`` (by fitted_at), or None when there is none."""
    row = (await session.execute(_newest(kind))).scalar_one_or_none()
    if row is None:
        return None
    return StoredModel(row.kind, row.version, row.fitted_at, row.cases, row.summary, row.blob)


async def latest_version(session: AsyncSession, kind: str = "eta") -> str | None:
    """The version ``latest`` would return, without reading the blob."""
    query = (
        select(LearnedModel.version)
        .where(LearnedModel.kind == kind)
        .order_by(LearnedModel.fitted_at.desc(), LearnedModel.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def get(session: AsyncSession, kind: str, version: str) -> StoredModel | None:
    row = (
        await session.execute(
            select(LearnedModel).where(LearnedModel.kind == kind, LearnedModel.version == version)
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return StoredModel(row.kind, row.version, row.fitted_at, row.cases, row.summary, row.blob)


async def versions(session: AsyncSession, kind: str) -> list[tuple[str, datetime, int]]:
    """(version, fitted_at, cases) of every fit of ``kind``, newest first."""
    rows = await session.execute(
        select(LearnedModel.version, LearnedModel.fitted_at, LearnedModel.cases)
        .where(LearnedModel.kind == kind)
        .order_by(LearnedModel.fitted_at.desc(), LearnedModel.id.desc())
    )
    return [(v, f, c) for v, f, c in rows.all()]
