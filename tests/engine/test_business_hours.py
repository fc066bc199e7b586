"""Stage SLAs in working time, on the time-skipping server (issue #12's acceptance).

Calendar Mon-Fri 09:00-17:30 Europe/London with England's bank holidays (the shipped
``uk_business_hours``): an 8h stage entered Friday 16:00 is due Monday 15:30 and escalates
then, not before; with that Monday closed it is due Tuesday 15:30; a pause over the weekend
consumes nothing. December dates, so London time is UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playbooks.calendars import load_calendars
from playbooks.registry import DEFAULT_FOLDER, CaseTypeRegistry, pinned_calendars
from schemas.engine_commands import CommandResult, PauseCase, ResumeCase
from tests.calendars.office import office_type
from tests.conftest import test_settings
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import snapshot, wait_for
from tests.engine.test_escalations import (
    DIRECTORY,
    MINUTE,
    _at_level,
    _level,
    _sleep_until,
    _staff_rows,
    _start_type,
)


def _registry(folder: Path, *, closed: Sequence[str] = ()) -> CaseTypeRegistry:
    folder.mkdir()
    (folder / "office_hours_review.yaml").write_text(office_type(warn_at=0.5), encoding="utf-8")
    source = DEFAULT_FOLDER / "uk_business_hours.calendar.yaml"
    text = source.read_text(encoding="utf-8")
    if closed:
        text += "  dates: [" + ", ".join(closed) + "]\n"
    (folder / source.name).write_text(text, encoding="utf-8")
    assert load_calendars([folder])[1] == []
    return CaseTypeRegistry.load([folder], known_roles=test_settings().known_roles())


def _about(at: datetime | None, expected: datetime) -> bool:
    """Equal but for the seconds the case took to start (the clock starts when it does)."""
    return at is not None and timedelta(0) <= at - expected < timedelta(seconds=5)


async def _next_friday_4pm(env: Any) -> datetime:
    now = await env.get_current_time()
    day = now.date() + timedelta(days=(4 - now.weekday()) % 7 or 7)
    while day.month in (3, 4, 5, 6, 7, 8, 9, 10):  # keep to GMT: London time is UTC
        day += timedelta(days=7)
    return datetime(day.year, day.month, day.day, 16, 0, tzinfo=UTC)


async def _office_case(env: Any, sessions: Any, worker: Any, tmp_path: Path, closed_monday: bool):
    friday = await _next_friday_4pm(env)
    monday = (friday + timedelta(days=3)).date().isoformat()
    registry = _registry(tmp_path / "types", closed=[monday] if closed_monday else [])
    ct = registry.get("office_hours_review")
    await _sleep_until(env, friday)
    calendars = pinned_calendars(registry, [ct], friday)
    ref, handle = await _start_type(
        env.client, sessions, worker.task_queue, ct, worker.started_cases, calendars
    )
    return friday, ref, handle


async def test_an_8h_stage_entered_friday_4pm_is_due_monday_330pm_and_escalates_then(
    time_skipping_env, sessions, tmp_path
):
    env = time_skipping_env
    async with engine_worker(env.client, sessions) as worker:
        friday, ref, handle = await _office_case(env, sessions, worker, tmp_path, False)
        state = await wait_for(handle, lambda s: s.sla is not None and s.sla.due_at is not None)
        monday_330 = friday + timedelta(days=3, hours=-0.5)
        assert state.sla is not None and _about(state.sla.due_at, monday_330)

        # the 50% warning: 1.5h on Friday + 2.5h on Monday = Monday 11:30, not over the weekend
        await _sleep_until(env, monday_330 - timedelta(hours=4) - MINUTE)
        assert (await snapshot(handle)).sla.state == "on_track"
        await _sleep_until(env, monday_330 - MINUTE)
        state = await snapshot(handle)
        assert _level(state) == 0 and state.sla is not None and state.sla.state == "warning"
        await _sleep_until(env, monday_330 + MINUTE)
        await wait_for(handle, _at_level(1))
        rows = await _staff_rows(sessions, ref, "sla_escalated", 2)
        assert {r.recipient for r in rows} == {
            DIRECTORY["onboarding_lead"],
            DIRECTORY["case_manager"],
        }
        await _staff_rows(sessions, ref, "sla_warning", 1)


async def test_with_that_monday_closed_it_is_due_tuesday_330pm(
    time_skipping_env, sessions, tmp_path
):
    env = time_skipping_env
    async with engine_worker(env.client, sessions) as worker:
        friday, _, handle = await _office_case(env, sessions, worker, tmp_path, True)
        state = await wait_for(handle, lambda s: s.sla is not None and s.sla.due_at is not None)
        assert state.sla is not None
        assert _about(state.sla.due_at, friday + timedelta(days=4, hours=-0.5))
        await _sleep_until(env, friday + timedelta(days=4, hours=-0.5) - MINUTE)
        assert _level(await snapshot(handle)) == 0
        await _sleep_until(env, friday + timedelta(days=4, hours=-0.5) + MINUTE)
        await wait_for(handle, _at_level(1))


async def test_a_pause_over_the_weekend_consumes_nothing(time_skipping_env, sessions, tmp_path):
    env = time_skipping_env
    async with engine_worker(env.client, sessions) as worker:
        friday, _, handle = await _office_case(env, sessions, worker, tmp_path, False)
        await wait_for(handle, lambda s: s.sla is not None and s.sla.due_at is not None)
        await _sleep_until(env, friday + timedelta(hours=1))  # Friday 17:00: 1h used
        await handle.execute_update(
            "pause", PauseCase(actor="cm", reason="client on holiday"), result_type=CommandResult
        )
        await _sleep_until(env, friday + timedelta(days=3, hours=-4))  # Monday 12:00
        await handle.execute_update(
            "resume", ResumeCase(actor="cm", reason="back"), result_type=CommandResult
        )
        state = await wait_for(handle, lambda s: s.sla is not None and s.sla.running)
        assert state.sla is not None
        assert abs(state.sla.active_seconds - 3600) < 5
        # 7h left from Monday noon: 5.5h on Monday, 1.5h on Tuesday
        assert _about(state.sla.due_at, friday + timedelta(days=4, hours=-5.5))
