"""The worker keeps the workload-rebalancing Temporal Schedule in place: created at start
every 15 minutes by default, brought in line when the setting changes, and it starts the
rebalancing workflow."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy

from schemas.contracts import REBALANCE_WORKFLOW
from tests.conftest import test_settings
from workers.schedules import ensure_rebalance_schedule


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
