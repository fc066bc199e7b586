"""The Temporal Schedules the worker keeps in place: workload rebalancing every
``REBALANCE_EVERY_MINUTES`` (15 by default), and the ETA model's refit every
``ETA_REFIT_EVERY_DAYS`` (7 by default).

Created when missing and brought back in line with the settings when they change, at every
worker start; two workers starting at once both succeed. Overlap policy SKIP: a run still
going when the next is due is not doubled up.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from core.settings import Settings
from schemas.contracts import REBALANCE_SCHEDULE_ID, REBALANCE_WORKFLOW, RebalanceInput
from schemas.eta import RefitEtaInput
from workflows.refit_eta import REFIT_ETA_WORKFLOW

ETA_REFIT_SCHEDULE_ID = "eta-refit"

log = logging.getLogger(__name__)


def rebalance_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            REBALANCE_WORKFLOW,
            RebalanceInput(trigger="schedule", requested_by="schedule"),
            id="workload-rebalancing-run",
            task_queue=task_queue or settings.temporal_task_queue,
            execution_timeout=timedelta(minutes=30),
        ),
        spec=ScheduleSpec(
            intervals=[
                ScheduleIntervalSpec(every=timedelta(minutes=settings.rebalance_every_minutes))
            ]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_rebalance_schedule(
    client: Client,
    settings: Settings,
    *,
    schedule_id: str = REBALANCE_SCHEDULE_ID,
    task_queue: str | None = None,
) -> None:
    wanted = rebalance_schedule(settings, task_queue=task_queue)
    try:
        await client.create_schedule(schedule_id, wanted)
        log.info(
            "schedule created id=%s every=%smin", schedule_id, settings.rebalance_every_minutes
        )
        return
    except ScheduleAlreadyRunningError:
        pass

    def _update(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=wanted)

    await client.get_schedule_handle(schedule_id).update(_update)
    log.info("schedule updated id=%s every=%smin", schedule_id, settings.rebalance_every_minutes)


def eta_refit_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            REFIT_ETA_WORKFLOW,
            RefitEtaInput(),
            id="eta-refit-run",
            task_queue=task_queue or settings.temporal_task_queue,
            execution_timeout=timedelta(hours=2),
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(days=settings.eta_refit_every_days))]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_eta_refit_schedule(
    client: Client,
    settings: Settings,
    *,
    schedule_id: str = ETA_REFIT_SCHEDULE_ID,
    task_queue: str | None = None,
) -> None:
    wanted = eta_refit_schedule(settings, task_queue=task_queue)
    try:
        await client.create_schedule(schedule_id, wanted)
        log.info("schedule created id=%s every=%sd", schedule_id, settings.eta_refit_every_days)
        return
    except ScheduleAlreadyRunningError:
        pass

    def _update(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=wanted)

    await client.get_schedule_handle(schedule_id).update(_update)
