"""Task reminders and overdue escalation on the time-skipping server.

return_request's ``tell_client_decision``: due 24h, reminders at 0.5 and 0.9 of that (12h,
21h36m) to the assignee (relationship_manager), overdue at 24h escalated to case_manager.
Each point is checked just before (nothing yet) and just after (the staff notice is in
``notifications``, the audit event in ``case_events``, the element's flags moved).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio.client import WorkflowHandle

from schemas.snapshot import CaseSnapshot
from store.db import SessionFactory
from tests.conftest import test_settings
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import snapshot, start, wait_for
from tests.engine.readmodel import events, eventually, notifications, task_row

TASK = "tell_client_decision"
RM_ADDRESS = "relationship-managers@example.com"
CM_ADDRESS = "case-managers@example.com"
MINUTE = timedelta(minutes=1)


def _settings() -> Any:
    directory = dict(test_settings().staff_directory)
    directory |= {"case_manager": CM_ADDRESS, "store_manager": "store-managers@example.com"}
    return test_settings(staff_directory=directory)


def _task(state: CaseSnapshot) -> Any:
    return next(e for e in state.elements if e.key == TASK)


async def _sleep_until(env: Any, at: datetime) -> None:
    now = await env.get_current_time()
    assert at > now, f"{at} is already past ({now})"
    await env.sleep(at - now)


async def _staff(sessions: SessionFactory, ref: str, milestone: str) -> list[Any]:
    return [r for r in await notifications(sessions, ref, milestone) if r.audience == "staff"]


async def _expect_reminders(
    handle: WorkflowHandle[Any, Any], sessions: SessionFactory, ref: str, n: int
) -> None:
    """Exactly ``n`` reminders: on the element, as events and as staff e-mails to the RM."""
    state = await wait_for(handle, lambda s: _task(s).reminders_sent == n)
    assert not _task(state).overdue
    rows = await eventually(
        lambda: events(sessions, ref, "task_reminder"), lambda rows: len(rows) >= n
    )
    assert [r.detail for r in rows] == [{"task": TASK, "fraction": f} for f in (0.5, 0.9)[:n]]
    sent = await eventually(
        lambda: _staff(sessions, ref, "task_reminder"), lambda rows: len(rows) >= n
    )
    assert len(sent) == n
    assert {r.recipient for r in sent} <= {RM_ADDRESS}
    assert all(r.channel == "email" and r.status != "failed" for r in sent)


async def test_reminders_at_their_fractions_then_overdue_escalates(time_skipping_env, sessions):
    env = time_skipping_env
    async with engine_worker(env.client, sessions, _settings()) as worker:
        ref, handle = await start(
            env.client,
            sessions,
            worker.task_queue,
            "return_request",
            data={"order_id": "ORD-7", "return_type": "store_credit", "has_receipt": True},
            started=worker.started_cases,
        )
        state = await wait_for(handle, lambda s: _task(s).status == "active")
        task = _task(state)
        assert task.opened_at is not None and task.due_at == task.opened_at + timedelta(hours=24)
        opened = task.opened_at

        # First reminder at 0.5 of 24h.
        await _sleep_until(env, opened + timedelta(hours=12) - MINUTE)
        assert _task(await snapshot(handle)).reminders_sent == 0
        assert await events(sessions, ref, "task_reminder") == []
        assert await _staff(sessions, ref, "task_reminder") == []
        await _sleep_until(env, opened + timedelta(hours=12) + MINUTE)
        await _expect_reminders(handle, sessions, ref, 1)

        # Second reminder at 0.9 of 24h (21h36m).
        await _sleep_until(env, opened + timedelta(hours=21, minutes=36) - MINUTE)
        await _expect_reminders(handle, sessions, ref, 1)
        await _sleep_until(env, opened + timedelta(hours=21, minutes=36) + MINUTE)
        await _expect_reminders(handle, sessions, ref, 2)

        # Due at 24h: not overdue a minute before, overdue and escalated a minute after.
        await _sleep_until(env, opened + timedelta(hours=24) - MINUTE)
        state = await snapshot(handle)
        assert not _task(state).overdue and state.priority == "normal"
        assert await events(sessions, ref, "task_overdue") == []
        assert await _staff(sessions, ref, "task_overdue") == []
        row = await task_row(sessions, ref, TASK)
        assert row is not None and not row.overdue and row.status == "active"

        await _sleep_until(env, opened + timedelta(hours=24) + MINUTE)
        state = await wait_for(handle, lambda s: _task(s).overdue)
        assert state.priority == "high"
        assert _task(state).status == "active"  # overdue is a flag: the task is still open
        overdue = await eventually(
            lambda: events(sessions, ref, "task_overdue"), lambda rows: len(rows) == 1
        )
        assert overdue[0].detail == {"task": TASK, "escalated_to": "case_manager"}
        sent = await eventually(
            lambda: _staff(sessions, ref, "task_overdue"), lambda rows: len(rows) >= 2
        )
        assert sorted(r.recipient for r in sent) == sorted([CM_ADDRESS, RM_ADDRESS])
        assert all(r.channel == "email" and r.status != "failed" for r in sent)
        row = await eventually(
            lambda: task_row(sessions, ref, TASK), lambda r: r is not None and r.overdue
        )
        assert row is not None and row.status == "active" and row.due_at == task.due_at
        # No third reminder and no second escalation later on.
        await env.sleep(timedelta(hours=6))
        state = await snapshot(handle)
        assert _task(state).reminders_sent == 2
        assert len(await events(sessions, ref, "task_reminder")) == 2
        assert len(await events(sessions, ref, "task_overdue")) == 1
