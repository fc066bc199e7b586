"""Read-model projection: the workflow's transitions, written to Postgres idempotently."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from temporalio import activity

from schemas.projection import Projection
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import Case, CaseEvent, CasePauseRow, CaseTaskRow, StageIntervalRow


class CaseStoreActivities:
    """Writes projections. Safe to run any number of times for the same input."""

    def __init__(self, session_factory: SessionFactory) -> None:
        self._sessions = session_factory

    @activity.defn(name="project_case")
    async def project(self, projection: Projection) -> None:
        """Apply one projection in one transaction (case row, stage intervals, audit events)."""
        async with self._sessions.begin() as session:
            if projection.seed is not None:
                await session.execute(
                    insert_draft_case(
                        ref=projection.case_ref,
                        client=projection.seed.client,
                        requested_by=projection.seed.requested_by,
                    )
                )
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
            for task in projection.tasks:
                values = task.model_dump(mode="python")
                values["stage"] = task.stage.value
                stmt = insert(CaseTaskRow).values(case_ref=projection.case_ref, **values)
                await session.execute(
                    stmt.on_conflict_do_update(
                        constraint="uq_case_tasks_case_key",
                        set_={k: stmt.excluded[k] for k in values if k != "key"},
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
