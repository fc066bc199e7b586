"""Reading the engine's read model in workflow tests: what a user of the console would see.

Projections are written by activities after the workflow state moved, so every read polls
until the rows show what the test expects (or fails with what it last saw).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from store.db import SessionFactory
from store.models import (
    Case,
    CaseEvent,
    CaseTaskRow,
    NotificationRow,
    ProjectionDeadLetter,
    StageIntervalRow,
)
from tests.waiting import eventually as eventually  # engine tests wait through this module


async def case_row(sessions: SessionFactory, ref: str) -> Case | None:
    async with sessions() as s:
        return await s.get(Case, ref)


async def visits(sessions: SessionFactory, ref: str) -> list[StageIntervalRow]:
    async with sessions() as s:
        rows = await s.scalars(
            select(StageIntervalRow)
            .where(StageIntervalRow.case_ref == ref)
            .order_by(StageIntervalRow.seq)
        )
        return list(rows.all())


async def events(sessions: SessionFactory, ref: str, kind: str | None = None) -> list[CaseEvent]:
    query = select(CaseEvent).where(CaseEvent.case_ref == ref)
    if kind is not None:
        query = query.where(CaseEvent.kind == kind)
    async with sessions() as s:
        return list((await s.scalars(query.order_by(CaseEvent.id))).all())


async def task_row(sessions: SessionFactory, ref: str, key: str) -> CaseTaskRow | None:
    async with sessions() as s:
        return await s.scalar(
            select(CaseTaskRow).where(CaseTaskRow.case_ref == ref, CaseTaskRow.key == key)
        )


async def notifications(
    sessions: SessionFactory, ref: str, milestone: str | None = None
) -> list[NotificationRow]:
    query = select(NotificationRow).where(NotificationRow.case_ref == ref)
    if milestone is not None:
        query = query.where(NotificationRow.milestone == milestone)
    async with sessions() as s:
        return list((await s.scalars(query.order_by(NotificationRow.id))).all())


async def dead_letters(sessions: SessionFactory, ref: str) -> list[ProjectionDeadLetter]:
    async with sessions() as s:
        rows = await s.scalars(
            select(ProjectionDeadLetter)
            .where(ProjectionDeadLetter.case_ref == ref)
            .order_by(ProjectionDeadLetter.id)
        )
        return list(rows.all())


def kinds(rows: list[Any]) -> list[str]:
    return [r.kind for r in rows]
