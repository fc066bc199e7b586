"""Building history CSVs and reading ``history_intervals`` back in tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from cli import history as history_cli
from schemas.history import COLUMNS
from store.db import SessionFactory
from store.models import HistoryInterval
from tests.conftest import new_ref

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
FACT_COLUMNS = (*COLUMNS, "source")


def case_type() -> str:
    """A case type nobody else uses: export tests filter on it (the test DB is shared)."""
    return f"hist_{uuid.uuid4().hex[:12]}"


def case_rows(
    ctype: str,
    *,
    ref: str | None = None,
    created: datetime = T0,
    stages: Sequence[tuple[str, str]] = (("intake", "completed"), ("review", "completed")),
    **facts: str,
) -> list[dict[str, str]]:
    """One case's rows as CSV fields: its stages one after another, an hour each."""
    base = {
        "case_ref": ref or new_ref("H"),
        "case_type": ctype,
        "client_type": "business",
        "tier": "premium",
        "country": "DE",
        "service_requirements": "kyc;payments",
        "documents_submitted_at_creation": "true",
        "created_at": created.isoformat(),
        **facts,
    }
    rows = []
    at = created + timedelta(minutes=5)
    for stage, outcome in stages:
        rows.append(
            {
                **base,
                "stage": stage,
                "entered_at": at.isoformat(),
                "exited_at": (at + timedelta(hours=1)).isoformat(),
                "outcome": outcome,
                "breached": "false",
            }
        )
        at += timedelta(hours=1)
    return rows


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    lines = [",".join(columns)]
    lines += [",".join(str(row[c]) for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str, name: str | None = None) -> Path:
    path = tmp_path / (name or f"{uuid.uuid4().hex[:8]}.csv")
    path.write_text(text, encoding="utf-8")
    return path


async def cli(database_url: str, *argv: str) -> int:
    """``onboarding history ...`` as an operator runs it (its own event loop and engine)."""
    return await asyncio.to_thread(history_cli.main, ["history", *argv], database_url=database_url)


async def held(sessions: SessionFactory, refs: Sequence[str]) -> list[tuple[Any, ...]]:
    """The stored rows of these cases (every column but id and loaded_at), in order."""
    async with sessions() as s:
        rows = await s.scalars(
            select(HistoryInterval)
            .where(HistoryInterval.case_ref.in_(list(refs)))
            .order_by(HistoryInterval.case_ref, HistoryInterval.entered_at)
        )
        return [
            tuple(
                list(r.service_requirements) if c == "service_requirements" else getattr(r, c)
                for c in FACT_COLUMNS
            )
            for r in rows
        ]


async def forget(sessions: SessionFactory, refs: Sequence[str]) -> None:
    async with sessions.begin() as s:
        await s.execute(delete(HistoryInterval).where(HistoryInterval.case_ref.in_(list(refs))))


def last_line(captured: pytest.CaptureFixture[str]) -> str:
    return captured.readouterr().out.strip().splitlines()[-1]
