"""Read-model projection: the workflow's transitions, written to Postgres idempotently."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from temporalio import activity

from schemas.case import workflow_id_for
from schemas.enums import CaseStatus, Stage
from schemas.projection import CaseSeed, Projection
from store.db import SessionFactory
from store.models import Case, CaseEvent, CasePauseRow, StageIntervalRow


def seed_case_row(case_ref: str, seed: CaseSeed) -> Any:
    """INSERT of a draft case row that does nothing if the API already wrote one."""
    client = seed.client
    return (
        insert(Case)
        .values(
            ref=case_ref,
            workflow_id=workflow_id_for(case_ref),
            request_hash="",
            requested_by=seed.requested_by,
            status=CaseStatus.DRAFT.value,
            stage=Stage.ACKNOWLEDGEMENT.value,
            priority="normal",
            ever_paused=False,
            flags=[],
            client_name=client.name,
            client_email=str(client.email),
            client_phone=client.phone,
            client_type=client.client_type.value,
            client_tier=client.tier.value,
            country=client.country,
            profile=client.model_dump(mode="json"),
            projection_version=0,
        )
        .on_conflict_do_nothing(index_elements=["ref"])
    )


class CaseStoreActivities:
    """Writes projections. Safe to run any number of times for the same input."""

    def __init__(self, session_factory: SessionFactory) -> None:
        self._sessions = session_factory

    @activity.defn(name="project_case")
    async def project(self, projection: Projection) -> None:
        """Apply one projection in one transaction (case row, stage intervals, audit events)."""
        async with self._sessions.begin() as session:
            if projection.seed is not None:
                await session.execute(seed_case_row(projection.case_ref, projection.seed))
            patch = projection.case.model_dump(exclude_none=True)
            await session.execute(
                update(Case)
                .where(Case.ref == projection.case_ref)
                .where(Case.projection_version < projection.version)
                .values(**patch, projection_version=projection.version, updated_at=projection.at)
            )
            for interval in projection.intervals:
                values = interval.model_dump(mode="python")
                values["stage"] = interval.stage.value
                stmt = insert(StageIntervalRow).values(case_ref=projection.case_ref, **values)
                await session.execute(
                    stmt.on_conflict_do_update(
                        constraint="uq_stage_intervals_case_seq",
                        set_={k: stmt.excluded[k] for k in values if k != "seq"},
                    )
                )
            for pause in projection.pauses:
                values = pause.model_dump(mode="python")
                stmt = insert(CasePauseRow).values(case_ref=projection.case_ref, **values)
                await session.execute(
                    stmt.on_conflict_do_update(
                        constraint="uq_case_pauses_case_seq",
                        set_={k: stmt.excluded[k] for k in values if k != "seq"},
                    )
                )
            for event in projection.events:
                await session.execute(
                    insert(CaseEvent)
                    .values(
                        case_ref=projection.case_ref,
                        event_key=event.key,
                        kind=event.kind,
                        actor=event.actor,
                        detail=event.detail,
                        occurred_at=projection.at,
                    )
                    .on_conflict_do_nothing(constraint="uq_case_events_case_key")
                )
        activity.logger.debug(
            "projected case=%s version=%s", projection.case_ref, projection.version
        )
