"""The worker keeps the workload-rebalancing Temporal Schedule in place: created at start
every 15 minutes by default, brought in line when the setting changes, and it starts the
rebalancing workflow."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy
from temporalio.service import RPCError, RPCStatusCode

from schemas.contracts import REBALANCE_WORKFLOW
from schemas.dashboard_rollup import DASHBOARD_ROLLUP_WORKFLOW
from schemas.monitoring import WATCH_WORKFLOW
from tests.conftest import test_settings
from workers.schedules import (
    ensure_dashboard_rollup_schedule,
    ensure_rebalance_schedule,
    ensure_sanctions_watch_schedule,
)


async def test_the_rebalancing_schedule_is_created_then_updated(dev_server_env: Any) -> None:
    client = dev_server_env.client
    schedule_id = f"workload-rebalancing-{uuid.uuid4().hex[:8]}"
    try:
        await ensure_rebalance_schedule(client, test_settings(), schedule_id=schedule_id)
        described = await client.get_schedule_handle(schedule_id).describe()
        spec = described.schedule.spec
        assert [i.every for i in spec.intervals] == [timedelta(minutes=15)]
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == REBALANCE_WORKFLOW
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP

        hourly = test_settings(rebalance_every_minutes=60)
        await ensure_rebalance_schedule(client, hourly, schedule_id=schedule_id)  # no error
        described = await client.get_schedule_handle(schedule_id).describe()
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(minutes=60)]
    finally:
        await client.get_schedule_handle(schedule_id).delete()


async def test_the_dashboard_rollup_schedule_is_hourly_then_follows_the_setting(
    dev_server_env: Any,
) -> None:
    client = dev_server_env.client
    schedule_id = f"dashboard-rollup-{uuid.uuid4().hex[:8]}"
    try:
        await ensure_dashboard_rollup_schedule(client, test_settings(), schedule_id=schedule_id)
        described = await client.get_schedule_handle(schedule_id).describe()
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(minutes=60)]
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == DASHBOARD_ROLLUP_WORKFLOW
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP

        often = test_settings(dashboard_rollup_every_minutes=10)
        await ensure_dashboard_rollup_schedule(client, often, schedule_id=schedule_id)
        described = await client.get_schedule_handle(schedule_id).describe()
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(minutes=10)]
    finally:
        await client.get_schedule_handle(schedule_id).delete()


async def test_the_sanctions_list_watch_runs_only_while_something_is_watched(
    dev_server_env: Any, tmp_path: Any
) -> None:
    client = dev_server_env.client
    schedule_id = f"sanctions-watch-{uuid.uuid4().hex[:8]}"
    handle = client.get_schedule_handle(schedule_id)
    assert not await ensure_sanctions_watch_schedule(
        client, test_settings(), schedule_id=schedule_id
    )
    watching = test_settings(sanctions_watch_dir=tmp_path)
    try:
        assert await ensure_sanctions_watch_schedule(client, watching, schedule_id=schedule_id)
        described = await handle.describe()
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(hours=24)]
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == WATCH_WORKFLOW
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP

        hourly = test_settings(
            sanctions_watch_url="https://lists.example/sdn.csv", sanctions_watch_every_hours=1
        )
        assert await ensure_sanctions_watch_schedule(client, hourly, schedule_id=schedule_id)
        described = await handle.describe()
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(hours=1)]
    finally:
        # nothing watched any more: the schedule goes
        assert not await ensure_sanctions_watch_schedule(
            client, test_settings(), schedule_id=schedule_id
        )
    # gone for the server (describe reads the schedule itself; the list is a visibility
    # query that may still show it for a moment after the delete)
    with pytest.raises(RPCError) as gone:
        await handle.describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND
