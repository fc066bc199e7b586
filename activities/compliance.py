"""Sanctions/PEP screening and risk scoring of a case's client, recorded for audit."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.risk import assess_risk
from core.metrics import SCREENING_HITS, SCREENINGS, count
from integrations.sanctions import (
    DEFAULT_THRESHOLD,
    EntityType,
    ScreeningResult,
    ScreeningSubject,
)
from integrations.sanctions.catalog import hit_record
from schemas.client import ClientProfile
from schemas.compliance import RiskLevel, ScreenClientInput, ScreeningOutcome
from schemas.enums import ClientType
from store.db import SessionFactory
from store.models import ScreeningRow

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 1.0
"""Seconds between heartbeats while the (thread-bound) matcher runs."""


class Screener(Protocol):
    """What the activity needs from a screener; ``ReloadingScreener`` in production."""

    def screen(self, subject: ScreeningSubject) -> ScreeningResult: ...


class ScreeningUnavailable(Exception):
    """The lists could not be used; never to be mistaken for a clear result."""


def entity_type_for(client_type: str | None) -> EntityType | None:
    """What the matcher calls the client: an individual is a person, a business or an
    enterprise an organisation ("entity"); unknown when the type is not one of ours."""
    if client_type == ClientType.INDIVIDUAL:
        return "person"
    if client_type in (ClientType.BUSINESS, ClientType.ENTERPRISE):
        return "entity"
    return None


def subject_for(client: ClientProfile) -> ScreeningSubject:
    """The screening subject: name, DOB when it is a real date, country, and whether the
    client is a person or an organisation (a company named like a listed person, or a
    person named like a listed vessel, scores lower)."""
    dob: dt.date | None = None
    if client.date_of_birth:
        try:
            dob = dt.date.fromisoformat(client.date_of_birth)
        except ValueError:
            # The schema checks the shape only (e.g. 1990-02-30 passes); screen on the name.
            log.warning("ignoring invalid date_of_birth for screening")
    return ScreeningSubject(
        name=client.name,
        dob=dob,
        country=client.country,
        entity_type=entity_type_for(client.client_type),
    )


def _outcome_from_row(row: ScreeningRow) -> ScreeningOutcome:
    """The small outcome for history; the best hit is reported only for a potential match."""
    best: dict[str, Any] = row.hits[0] if row.hits and row.decision == "potential_match" else {}
    return ScreeningOutcome(
        screening_id=row.id,
        decision=row.decision,
        score=row.score,
        matched_name=best.get("matched_name"),
        list_entry_id=best.get("entry_id"),
        explanation=best.get("explanation"),
        list_version=row.list_version,
        risk_level=RiskLevel(row.risk_level),
        risk_score=row.risk_score,
        risk_factors=list(row.risk_factors),
    )


class ComplianceActivities:
    """Screening activity with its injected DB sessions, screener and country lists."""

    def __init__(
        self,
        session_factory: SessionFactory,
        screener: Screener,
        *,
        high_risk_countries: Iterable[str],
        increased_monitoring_countries: Iterable[str],
    ) -> None:
        self._sessions = session_factory
        self._screener = screener
        self._threshold = float(getattr(screener, "threshold", DEFAULT_THRESHOLD))
        self._high_risk = [c.upper() for c in high_risk_countries]
        self._monitored = [c.upper() for c in increased_monitoring_countries]

    async def _stored(self, case_ref: str, attempt_key: str) -> ScreeningRow | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(ScreeningRow).where(
                    ScreeningRow.case_ref == case_ref, ScreeningRow.attempt_key == attempt_key
                )
            )

    def _screen_blocking(self, subject: ScreeningSubject) -> tuple[ScreeningResult, dict[str, str]]:
        """Runs in a worker thread: the first call may load and index the lists.

        Returns the result and, per matched entry, its content hash as the re-screen records
        it (``entry_content_hash``), taken from the very index that matched: a re-screen
        then knows a hit reviewed here, and alerts only when the entry has changed since.
        """
        current = getattr(self._screener, "current", None)  # ReloadingScreener: the index now
        screener = current() if callable(current) else self._screener
        result = screener.screen(subject)
        entries = getattr(screener, "entry_count", None)
        if entries == 0 or not result.list_version:
            raise ScreeningUnavailable("sanctions lists are empty")
        hashes: dict[str, str] = {}
        entry_hash = getattr(screener, "entry_hash", None)
        if callable(entry_hash):
            for hit in result.hits:
                value = entry_hash(hit.entry_id)
                if value:
                    hashes[hit.entry_id] = value
        return result, hashes

    async def _screen_with_heartbeat(
        self, subject: ScreeningSubject
    ) -> tuple[ScreeningResult, dict[str, str]]:
        """Keep heart-beating while the CPU-bound matcher runs off the event loop."""
        task = asyncio.create_task(asyncio.to_thread(self._screen_blocking, subject))
        activity.heartbeat("screening")
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY)
            if done:
                return task.result()
            activity.heartbeat("screening")

    @activity.defn(name="screen_client")
    async def screen_client(self, inp: ScreenClientInput) -> ScreeningOutcome:
        """Screen the client once per (case, attempt_key) and record the hits with the list
        version; a retry or replay returns the stored outcome instead of screening again.

        A list that cannot be loaded raises a retryable ``ScreeningUnavailable`` error: an
        unusable list must stall the case, never let it through as clear.
        """
        existing = await self._stored(inp.case_ref, inp.attempt_key)
        if existing is not None:
            return _outcome_from_row(existing)

        subject = subject_for(inp.client)
        try:
            result, entry_hashes = await self._screen_with_heartbeat(subject)
        except Exception as e:
            activity.logger.warning("screening unavailable case=%s: %s", inp.case_ref, e)
            raise ApplicationError(
                f"sanctions screening unavailable: {type(e).__name__}: {e}",
                type="ScreeningUnavailable",
            ) from e

        level, risk_score, factors = assess_risk(
            client=inp.client,
            screening_decision=result.decision,
            screening_score=result.score,
            high_risk_countries=self._high_risk,
            increased_monitoring_countries=self._monitored,
        )
        # for the audit trail: each hit's entry, score, breakdown and the threshold in force,
        # and the entry's content hash (the re-screen does not alert on it again unchanged)
        threshold = float(getattr(result, "threshold", self._threshold))
        hits = [
            hit_record(h, threshold=threshold, entry_hash=entry_hashes.get(h.entry_id))
            for h in result.hits
        ]
        row_id = f"scr_{uuid.uuid4().hex}"
        async with self._sessions.begin() as session:
            await session.execute(
                insert(ScreeningRow)
                .values(
                    id=row_id,
                    case_ref=inp.case_ref,
                    attempt_key=inp.attempt_key,
                    decision=result.decision,
                    score=result.score,
                    list_version=result.list_version,
                    threshold=threshold,
                    hits=hits,
                    risk_level=level.value,
                    risk_score=risk_score,
                    risk_factors=factors,
                    screened_at=dt.datetime.now(dt.UTC),
                )
                .on_conflict_do_nothing(constraint="uq_screenings_case_attempt")
            )
        # Read back: if a concurrent attempt won the insert, its row is the one of record.
        stored = await self._stored(inp.case_ref, inp.attempt_key)
        if stored is None:  # pragma: no cover - the insert or a concurrent one committed
            raise ApplicationError("screening row vanished after insert", type="ScreeningLost")
        if stored.id == row_id:  # this attempt's screening is the one of record: count it once
            count(SCREENINGS, decision=stored.decision, source="onboarding")
            if stored.decision == "potential_match":
                count(SCREENING_HITS, source="onboarding")
        activity.logger.info(
            "screened case=%s decision=%s score=%.1f risk=%s/%d",
            inp.case_ref,
            stored.decision,
            stored.score,
            stored.risk_level,
            stored.risk_score,
        )
        return _outcome_from_row(stored)
