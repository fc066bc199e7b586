"""``GET /cases/{ref}/sla``: the figures add up to the budget, deadlines follow the calendar,
and the weekends and holidays skipped are named. The arithmetic is checked at fixed times;
then a case started over HTTP on a business-hours case type is explained live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.services.sla import figures
from playbooks.calendars import load_calendars, resolve
from playbooks.registry import DEFAULT_FOLDER
from schemas import workcal
from schemas.sla_explain import ClockMilestone, ClockPause, SlaClockView
from store.db import SessionFactory
from tests.api_engine.conftest import ADMIN, CLIENT, MANAGER, serving_api
from tests.api_engine.test_bad_input import wait_state
from tests.calendars.office import office_type
from tests.conftest import new_ref
from tests.factories import profile_json

UK = resolve(
    load_calendars([DEFAULT_FOLDER])[0]["uk_business_hours"], datetime(2026, 12, 1, tzinfo=UTC)
)
FRIDAY_4PM = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)  # London is on UTC in December
H = 3600.0


def _view(**changes: Any) -> SlaClockView:
    base: dict[str, Any] = {
        "stage": "review",
        "stage_title": "Review",
        "entered_at": FRIDAY_4PM,
        "budget_seconds": 8 * H,
        "active_before_seconds": 0.0,
        "running_since": FRIDAY_4PM,
        "paused_seconds": 0.0,
        "stopped_since": None,
        "calendar": UK,
        "milestones": [
            ClockMilestone(key="warning:0.8", kind="warning", at_working_seconds=6.4 * H),
            ClockMilestone(key="breach", kind="breach", at_working_seconds=8 * H),
            ClockMilestone(
                key="escalation:1",
                kind="escalation",
                at_working_seconds=8 * H,
                level=1,
                target="onboarding_lead",
            ),
        ],
    }
    return SlaClockView(**(base | changes))


def test_monday_morning_the_figures_add_up_and_name_the_weekend() -> None:
    monday_10 = FRIDAY_4PM + timedelta(days=2, hours=18)
    got = figures("C-1", _view(), monday_10)
    assert (got.budget_minutes, got.working_minutes_used, got.working_minutes_left) == (
        480,
        150,  # Friday 16:00-17:30 and Monday 09:00-10:00
        330,
    )
    assert got.working_minutes_used + (got.working_minutes_left or 0) == got.budget_minutes
    assert got.due_at == datetime(2026, 12, 7, 15, 30, tzinfo=UTC)
    assert [(s.day.isoformat(), s.why) for s in got.skipped] == [
        ("2026-12-05", "weekend"),
        ("2026-12-06", "weekend"),
    ]
    warning, breach, escalation = got.deadlines
    assert warning.due_at == datetime(2026, 12, 7, 13, 54, tzinfo=UTC)  # 6.4h: 1.5h Fri + 4.9h Mon
    assert breach.due_at == escalation.due_at == got.due_at
    assert escalation.target == "onboarding_lead" and not escalation.fired
    assert (got.calendar, got.time_zone, got.running) == (
        "uk_business_hours",
        "Europe/London",
        True,
    )


def test_paused_over_the_weekend_the_pause_is_listed_and_costs_nothing() -> None:
    view = _view(
        active_before_seconds=H,
        running_since=None,
        stopped_since=FRIDAY_4PM + timedelta(hours=1),
        pauses=[ClockPause(paused_at=FRIDAY_4PM + timedelta(hours=1), reason="client away")],
    )
    got = figures("C-2", view, FRIDAY_4PM + timedelta(days=3))
    assert (got.working_minutes_used, got.working_minutes_left, got.running) == (60, 420, False)
    assert got.due_at is None and all(d.due_at is None for d in got.deadlines)
    assert [(i.why, i.end) for i in got.stopped] == [("paused: client away", None)]
    assert got.stopped_minutes == 71 * 60  # Friday 17:00 to Monday 16:00


def test_overdue_shows_negative_minutes_left() -> None:
    got = figures("C-3", _view(), FRIDAY_4PM + timedelta(days=4))  # Tuesday 16:00
    assert got.working_minutes_used == 90 + 510 + 420
    assert got.working_minutes_left == 480 - got.working_minutes_used < 0
    assert got.due_at == FRIDAY_4PM + timedelta(days=4) + timedelta(
        minutes=got.working_minutes_left
    )


def test_without_a_calendar_it_is_wall_clock() -> None:
    got = figures("C-4", _view(calendar=None), FRIDAY_4PM + timedelta(hours=3))
    assert (got.working_minutes_used, got.working_minutes_left) == (180, 300)
    assert got.due_at == FRIDAY_4PM + timedelta(hours=8)
    assert got.calendar is None and got.skipped == []


@pytest.fixture
async def office_api(
    tmp_path: Path, sessions: SessionFactory, dev_server_env: Any
) -> AsyncIterator[httpx.AsyncClient]:
    types = tmp_path / "types"
    types.mkdir()
    (types / "office_hours_review.yaml").write_text(office_type(), encoding="utf-8")
    async with serving_api(tmp_path, sessions, dev_server_env.client, types) as http:
        yield http


async def test_a_live_case_is_explained_in_working_time(
    office_api: httpx.AsyncClient, dev_server_env: Any
) -> None:
    http = office_api
    ref = new_ref("SLA")
    body = {"reference": ref, "case_type": "office_hours_review", "client": profile_json()}
    r = await http.post("/cases", json=body, headers=MANAGER)
    assert r.status_code == 201, r.text
    workflow_id = r.json()["workflow_id"]
    try:
        await wait_state(http, ref, lambda s: s["sla"] is not None)
        r = await http.get(f"/cases/{ref}/sla", headers=CLIENT)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["calendar"] == "uk_business_hours" and got["budget_minutes"] == 480
        assert got["working_minutes_used"] + got["working_minutes_left"] == pytest.approx(480)
        due = datetime.fromisoformat(got["due_at"])
        local = workcal.to_local(UK, due)
        assert local.weekday() < 5 and (9, 0) <= (local.hour, local.minute) <= (17, 30)
        now = datetime.fromisoformat(got["computed_at"])
        left = timedelta(minutes=got["working_minutes_left"])
        assert abs(due - workcal.add(UK, now, left)) < timedelta(seconds=1)
        assert [d["key"] for d in got["deadlines"]] == ["warning:0.8", "breach", "escalation:1"]
        missing = await http.get(f"/cases/{new_ref('NONE')}/sla", headers=ADMIN)
        assert missing.status_code == 404
    finally:
        await dev_server_env.client.get_workflow_handle(workflow_id).terminate("test cleanup")
