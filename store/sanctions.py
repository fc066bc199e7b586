"""Sanctions monitoring's rows (migration 0014): list versions, alerts, and the clients a
re-screen goes through. Every write is idempotent (keyed inserts, absolute updates), so a
retried activity or a command run twice changes nothing the second time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Case, CaseEvent, SanctionsAlert, SanctionsListVersion

ONBOARDING_CASE_TYPES = ("client_onboarding", "demo_onboarding")
"""Case types whose clients are monitored (the demo one too, so the demo shows it)."""
LIVE_STATUSES = ("open", "waiting_on_client", "paused")
"""Onboarding still going: the client is being taken on."""
COMPLETED_STATUSES = ("resolved", "closed")
"""Engine cases over and done; monitored when the resolution is ``completed``."""
FROZEN_COMPLETED = "completed"
"""The pre-engine workflow's status of an onboarded client."""


@dataclass(frozen=True)
class ClientToScreen:
    ref: str
    name: str
    profile: dict[str, Any]
    country: str
    client_type: str


def monitored() -> Any:
    """Clients with an onboarding case that is open, resolved or closed as completed; a
    rejected or cancelled onboarding is nobody's client."""
    return and_(
        Case.case_type.in_(ONBOARDING_CASE_TYPES),
        or_(
            Case.status.in_((*LIVE_STATUSES, FROZEN_COMPLETED)),
            and_(Case.status.in_(COMPLETED_STATUSES), Case.resolution == "completed"),
        ),
    )


async def clients_after(
    session: AsyncSession, *, after_ref: str | None, limit: int
) -> list[ClientToScreen]:
    """The next ``limit`` monitored clients in case-reference order after ``after_ref``."""
    stmt = select(Case.ref, Case.client_name, Case.profile, Case.country, Case.client_type).where(
        monitored()
    )
    if after_ref is not None:
        stmt = stmt.where(Case.ref > after_ref)
    rows = (await session.execute(stmt.order_by(Case.ref).limit(limit))).all()
    return [
        ClientToScreen(r.ref, r.client_name, dict(r.profile or {}), r.country, r.client_type)
        for r in rows
    ]


# ----------------------------------------------------------------------------- versions
async def record_version(
    session: AsyncSession,
    *,
    version: str,
    loaded_at: datetime,
    loaded_by: str,
    source: str,
    files: dict[str, Any],
    entry_count: int,
    rescreen_workflow_id: str,
) -> bool:
    """Remember a loaded version; False when it was recorded before (nothing changes)."""
    inserted = await session.scalar(
        insert(SanctionsListVersion)
        .values(
            version=version,
            loaded_at=loaded_at,
            loaded_by=loaded_by[:120],
            source=source,
            files=files,
            entry_count=entry_count,
            rescreen_workflow_id=rescreen_workflow_id,
            status="loaded",
            totals={},
        )
        .on_conflict_do_nothing(index_elements=["version"])
        .returning(SanctionsListVersion.version)
    )
    return inserted is not None


async def mark_rescreening(session: AsyncSession, version: str) -> None:
    await session.execute(
        update(SanctionsListVersion)
        .where(SanctionsListVersion.version == version, SanctionsListVersion.status == "loaded")
        .values(status="rescreening")
    )


async def mark_rescreened(
    session: AsyncSession, version: str, *, totals: dict[str, Any], at: datetime
) -> None:
    await session.execute(
        update(SanctionsListVersion)
        .where(SanctionsListVersion.version == version)
        .values(status="rescreened", totals=totals, rescreened_at=at)
    )


async def latest_versions(session: AsyncSession, limit: int = 10) -> list[SanctionsListVersion]:
    return list(
        (
            await session.scalars(
                select(SanctionsListVersion)
                .order_by(SanctionsListVersion.loaded_at.desc())
                .limit(limit)
            )
        ).all()
    )


# ----------------------------------------------------------------------------- alerts
async def insert_alerts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert the alerts never raised before; returns the ids actually inserted. An alert of
    the same client, entry and entry content (open, cleared or escalated) is left alone."""
    if not rows:
        return set()
    inserted = await session.scalars(
        insert(SanctionsAlert)
        .values(list(rows))
        .on_conflict_do_nothing()
        .returning(SanctionsAlert.alert_id)
    )
    return set(inserted.all())


async def alerts_without_case(
    session: AsyncSession, *, client_refs: Iterable[str] | None = None, limit: int = 1000
) -> list[SanctionsAlert]:
    """Alerts whose review case is not open yet (just written, or left so by a crash)."""
    stmt = select(SanctionsAlert).where(SanctionsAlert.alert_case_ref.is_(None))
    if client_refs is not None:
        stmt = stmt.where(SanctionsAlert.client_case_ref.in_(list(client_refs)))
    return list(
        (await session.scalars(stmt.order_by(SanctionsAlert.created_at).limit(limit))).all()
    )


async def count_alerts(
    session: AsyncSession, *, client_refs: Iterable[str], rescreen_workflow_id: str
) -> tuple[int, int]:
    """(alerts, alerts with their case open) this re-screen raised for these clients."""
    refs = list(client_refs)
    if not refs:
        return 0, 0
    row = (
        await session.execute(
            select(
                func.count(),
                func.count(SanctionsAlert.alert_case_ref),
            ).where(
                SanctionsAlert.client_case_ref.in_(refs),
                SanctionsAlert.rescreen_workflow_id == rescreen_workflow_id,
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def link_alert_case(session: AsyncSession, alert_id: str, case_ref: str) -> None:
    await session.execute(
        update(SanctionsAlert)
        .where(SanctionsAlert.alert_id == alert_id)
        .values(alert_case_ref=case_ref)
    )


async def decide_alert(
    session: AsyncSession,
    alert_id: str,
    *,
    status: str,
    by: str | None,
    reason_code: str | None,
    reason: str | None,
    at: datetime,
) -> SanctionsAlert | None:
    """Record the reviewer's decision (absolute values: a retry writes the same)."""
    await session.execute(
        update(SanctionsAlert)
        .where(SanctionsAlert.alert_id == alert_id)
        .values(
            status=status,
            decided_by=(by or "")[:120] or None,
            reason_code=(reason_code or "")[:60] or None,
            reason=reason,
            decided_at=at,
        )
    )
    return await session.get(SanctionsAlert, alert_id, populate_existing=True)


async def alerts_for_case(session: AsyncSession, ref: str) -> list[SanctionsAlert]:
    """The alerts a case page shows: a client's alerts, or the one an alert case reviews."""
    return list(
        (
            await session.scalars(
                select(SanctionsAlert)
                .where(
                    or_(SanctionsAlert.client_case_ref == ref, SanctionsAlert.alert_case_ref == ref)
                )
                .order_by(SanctionsAlert.created_at.desc())
            )
        ).all()
    )


async def case_event(
    session: AsyncSession,
    *,
    case_ref: str,
    key: str,
    kind: str,
    actor: str,
    detail: dict[str, Any],
    at: datetime,
) -> None:
    """An audit event on a case from outside its workflow (keyed: written once)."""
    await session.execute(
        insert(CaseEvent)
        .values(
            case_ref=case_ref,
            event_key=key[:120],
            kind=kind[:40],
            actor=actor[:120],
            detail=detail,
            occurred_at=at,
        )
        .on_conflict_do_nothing(constraint="uq_case_events_case_key")
    )
