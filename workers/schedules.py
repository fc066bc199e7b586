"""The Temporal Schedules the worker keeps in place: workload rebalancing every
``REBALANCE_EVERY_MINUTES`` (15 by default), the ETA model's refit every
``ETA_REFIT_EVERY_DAYS`` (7 by default), and the dashboard roll-up's refresh every
``DASHBOARD_ROLLUP_EVERY_MINUTES`` (60 by default), and the sanctions list watch every
``SANCTIONS_WATCH_EVERY_HOURS`` (24 by default; only while a folder or URL is watched).

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
from temporalio.service import RPCError, RPCStatusCode

from core.settings import Settings
from schemas.contracts import REBALANCE_SCHEDULE_ID, REBALANCE_WORKFLOW, RebalanceInput
from schemas.dashboard_rollup import (
    DASHBOARD_ROLLUP_SCHEDULE_ID,
    DASHBOARD_ROLLUP_WORKFLOW,
    RollupInput,
)
from schemas.eta import RefitEtaInput
from schemas.monitoring import WATCH_SCHEDULE_ID, WATCH_WORKFLOW, WatchInput
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


def dashboard_rollup_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DASHBOARD_ROLLUP_WORKFLOW,
            RollupInput(),
            id="dashboard-rollup-run",
            task_queue=task_queue or settings.temporal_task_queue,
            execution_timeout=timedelta(hours=2),
        ),
        spec=ScheduleSpec(
            intervals=[
                ScheduleIntervalSpec(
                    every=timedelta(minutes=settings.dashboard_rollup_every_minutes)
                )
            ]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_dashboard_rollup_schedule(
    client: Client,
    settings: Settings,
    *,
    schedule_id: str = DASHBOARD_ROLLUP_SCHEDULE_ID,
    task_queue: str | None = None,
) -> None:
    wanted = dashboard_rollup_schedule(settings, task_queue=task_queue)
    every = settings.dashboard_rollup_every_minutes
    try:
        await client.create_schedule(schedule_id, wanted)
        log.info("schedule created id=%s every=%smin", schedule_id, every)
        return
    except ScheduleAlreadyRunningError:
        pass

    def _update(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=wanted)

    await client.get_schedule_handle(schedule_id).update(_update)
    log.info("schedule updated id=%s every=%smin", schedule_id, every)


def sanctions_watch_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WATCH_WORKFLOW,
            WatchInput(requested_by="schedule"),
            id="sanctions-list-watch-run",
            task_queue=task_queue or settings.temporal_task_queue,
            execution_timeout=timedelta(hours=2),
        ),
        spec=ScheduleSpec(
            intervals=[
                ScheduleIntervalSpec(every=timedelta(hours=settings.sanctions_watch_every_hours))
            ]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_sanctions_watch_schedule(
    client: Client,
    settings: Settings,
    *,
    schedule_id: str = WATCH_SCHEDULE_ID,
    task_queue: str | None = None,
) -> bool:
    """The sanctions list watch (docs/sanctions-monitoring.md): every
    ``SANCTIONS_WATCH_EVERY_HOURS`` (24 by default) when ``SANCTIONS_WATCH_DIR`` or
    ``SANCTIONS_WATCH_URL`` is set; removed when neither is. Returns whether it is on."""
    handle = client.get_schedule_handle(schedule_id)
    if settings.sanctions_watch_dir is None and not settings.sanctions_watch_url:
        try:
            await handle.delete()
            log.info("schedule removed id=%s (no watched folder or URL)", schedule_id)
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
        return False
    wanted = sanctions_watch_schedule(settings, task_queue=task_queue)
    every = settings.sanctions_watch_every_hours
    try:
        await client.create_schedule(schedule_id, wanted)
        log.info("schedule created id=%s every=%sh", schedule_id, every)
        return True
    except ScheduleAlreadyRunningError:
        pass

    def _update(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=wanted)

    await handle.update(_update)
    log.info("schedule updated id=%s every=%sh", schedule_id, every)
    return True
