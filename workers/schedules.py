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


def _every(
    settings: Settings,
    task_queue: str | None,
    *,
    workflow: str,
    arg: object,
    run_id: str,
    every: timedelta,
    timeout: timedelta,
) -> Schedule:
    """One workflow run every ``every``; a run still going when the next is due is skipped."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            workflow,
            arg,
            id=run_id,
            task_queue=task_queue or settings.temporal_task_queue,
            execution_timeout=timeout,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def _ensure(client: Client, schedule_id: str, wanted: Schedule, every: str) -> None:
    """Create the schedule, or bring an existing one in line with ``wanted``."""
    try:
        await client.create_schedule(schedule_id, wanted)
    except ScheduleAlreadyRunningError:  # another worker or an earlier start made it
        log.debug("schedule exists id=%s: updating it", schedule_id)
    else:
        log.info("schedule created id=%s every=%s", schedule_id, every)
        return

    def _update(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=wanted)

    await client.get_schedule_handle(schedule_id).update(_update)
    log.info("schedule updated id=%s every=%s", schedule_id, every)


def rebalance_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    return _every(
        settings,
        task_queue,
        workflow=REBALANCE_WORKFLOW,
        arg=RebalanceInput(trigger="schedule", requested_by="schedule"),
        run_id="workload-rebalancing-run",
        every=timedelta(minutes=settings.rebalance_every_minutes),
        timeout=timedelta(minutes=30),
    )


async def ensure_rebalance_schedule(
    client: Client,
    settings: Settings,
    *,
    schedule_id: str = REBALANCE_SCHEDULE_ID,
    task_queue: str | None = None,
) -> None:
    wanted = rebalance_schedule(settings, task_queue=task_queue)
    await _ensure(client, schedule_id, wanted, f"{settings.rebalance_every_minutes}min")


def eta_refit_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    return _every(
        settings,
        task_queue,
        workflow=REFIT_ETA_WORKFLOW,
        arg=RefitEtaInput(),
        run_id="eta-refit-run",
        every=timedelta(days=settings.eta_refit_every_days),
        timeout=timedelta(hours=2),
    )


async def ensure_eta_refit_schedule(
    client: Client,
    settings: Settings,
    *,
    schedule_id: str = ETA_REFIT_SCHEDULE_ID,
    task_queue: str | None = None,
) -> None:
    wanted = eta_refit_schedule(settings, task_queue=task_queue)
    await _ensure(client, schedule_id, wanted, f"{settings.eta_refit_every_days}d")


def dashboard_rollup_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    return _every(
        settings,
        task_queue,
        workflow=DASHBOARD_ROLLUP_WORKFLOW,
        arg=RollupInput(),
        run_id="dashboard-rollup-run",
        every=timedelta(minutes=settings.dashboard_rollup_every_minutes),
        timeout=timedelta(hours=2),
    )


async def ensure_dashboard_rollup_schedule(
    client: Client,
    settings: Settings,
    *,
    schedule_id: str = DASHBOARD_ROLLUP_SCHEDULE_ID,
    task_queue: str | None = None,
) -> None:
    wanted = dashboard_rollup_schedule(settings, task_queue=task_queue)
    await _ensure(client, schedule_id, wanted, f"{settings.dashboard_rollup_every_minutes}min")


def sanctions_watch_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    return _every(
        settings,
        task_queue,
        workflow=WATCH_WORKFLOW,
        arg=WatchInput(requested_by="schedule"),
        run_id="sanctions-list-watch-run",
        every=timedelta(hours=settings.sanctions_watch_every_hours),
        timeout=timedelta(hours=2),
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
    if settings.sanctions_watch_dir is None and not settings.sanctions_watch_url:
        try:
            await client.get_schedule_handle(schedule_id).delete()
            log.info("schedule removed id=%s (no watched folder or URL)", schedule_id)
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
        return False
    wanted = sanctions_watch_schedule(settings, task_queue=task_queue)
    await _ensure(client, schedule_id, wanted, f"{settings.sanctions_watch_every_hours}h")
    return True
