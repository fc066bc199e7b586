"""Clients, lists and read-model lookups for the sanctions monitoring tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from temporalio.client import Client

from cli.sanctions import load
from core.settings import Settings
from schemas.monitoring import LoadResult, RescreenTotals
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import Case, CaseEvent, SanctionsAlert, SanctionsListVersion
from tests.conftest import new_ref, test_settings
from tests.factories import profile


def monitoring_settings(installed: Path, **overrides: Any) -> Settings:
    """The worker screens against ``installed/sdn.csv`` (what ``sanctions load`` replaces)."""
    return test_settings(
        sanctions_sdn_path=installed / "sdn.csv",
        sanctions_alt_path=None,
        sanctions_opensanctions_path=None,
        **overrides,
    )


async def add_client(
    sessions: SessionFactory,
    name: str,
    *,
    prefix: str,
    status: str = "resolved",
    resolution: str | None = "completed",
    **profile_overrides: Any,
) -> str:
    """A client's onboarding case as the read model holds it once the case got that far."""
    ref = new_ref(prefix)
    who = profile(name=name, email="client@example.com", **profile_overrides)
    async with sessions.begin() as s:
        await s.execute(
            insert_draft_case(
                ref=ref,
                client=who,
                requested_by="test",
                case_type="client_onboarding",
                case_type_version="test",
                engine="case",
                workflow_id=f"onboarding-{ref}",
                first_stage="acknowledgement",
            )
        )
        await s.execute(
            update(Case).where(Case.ref == ref).values(status=status, resolution=resolution)
        )
    return ref


async def load_list(
    settings: Settings, sessions: SessionFactory, temporal: Client, path: Path, source: str = ""
) -> LoadResult:
    """``onboarding sanctions load PATH`` (in process, against the test database)."""
    return await load(
        settings=settings, path=path, source=source or None, sessions=sessions, temporal=temporal
    )


async def rescreened(temporal: Client, workflow_id: str) -> RescreenTotals:
    handle = temporal.get_workflow_handle(workflow_id, result_type=RescreenTotals)
    return await asyncio.wait_for(handle.result(), timeout=120)


async def alerts_of(sessions: SessionFactory, refs: list[str]) -> list[SanctionsAlert]:
    async with sessions() as s:
        return list(
            (
                await s.scalars(
                    select(SanctionsAlert)
                    .where(SanctionsAlert.client_case_ref.in_(refs))
                    .order_by(SanctionsAlert.created_at, SanctionsAlert.alert_id)
                )
            ).all()
        )


async def alert_cases_of(sessions: SessionFactory, refs: list[str]) -> list[Case]:
    """Every sanctions alert case opened for these clients (whatever the alert rows say)."""
    async with sessions() as s:
        return list(
            (
                await s.scalars(
                    select(Case).where(
                        Case.case_type == "sanctions_alert",
                        Case.data["client_case_ref"].astext.in_(refs),
                    )
                )
            ).all()
        )


async def events_of(sessions: SessionFactory, ref: str, kind: str) -> list[CaseEvent]:
    async with sessions() as s:
        return list(
            (
                await s.scalars(
                    select(CaseEvent)
                    .where(CaseEvent.case_ref == ref, CaseEvent.kind == kind)
                    .order_by(CaseEvent.id)
                )
            ).all()
        )


async def version_row(sessions: SessionFactory, version: str) -> SanctionsListVersion | None:
    async with sessions() as s:
        return await s.get(SanctionsListVersion, version, populate_existing=True)
