"""The vectorised working-time index agrees with the engine's own calendar arithmetic."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np

from analytics.casetypes import shipped
from analytics.worktime import WorkIndex
from playbooks.calendars import resolve
from schemas import workcal


def test_work_index_matches_workcal_on_random_instants():
    calendar = shipped().office_calendar()
    pinned = resolve(calendar, datetime(2026, 6, 1, tzinfo=UTC))
    index = WorkIndex(calendar, 2026, 2026)  # grows by itself to cover 2025-2027
    rng = random.Random(1)
    for _ in range(300):
        a = datetime(2025, 1, 2, tzinfo=UTC) + timedelta(seconds=rng.uniform(0, 2.9 * 365 * 86400))
        b = a + timedelta(seconds=rng.uniform(0, 12 * 86400))
        budget = rng.uniform(0, 30 * 3600)
        got = index.between(np.array([a.timestamp()]), np.array([b.timestamp()]))[0]
        assert abs(got - workcal.working(pinned, a, b).total_seconds()) < 1e-3
        due = index.add(np.array([a.timestamp()]), np.array([budget]))[0]
        assert abs(due - workcal.add(pinned, a, timedelta(seconds=budget)).timestamp()) < 1e-3
        assert abs(index.add_one(a.timestamp(), budget) - due) < 1e-3


def test_friday_evening_waits_the_weekend_and_local_time_is_london():
    index = WorkIndex(shipped().office_calendar())
    friday_6pm = datetime(2026, 3, 6, 18, tzinfo=UTC).timestamp()  # GMT in March
    monday_10am = datetime(2026, 3, 9, 10, tzinfo=UTC).timestamp()
    waits = index.until_open(np.array([friday_6pm, monday_10am])) / 3600
    assert list(waits) == [63.0, 0.0]  # Monday 09:00
    summer = datetime(2026, 7, 1, 8, 30, tzinfo=UTC).timestamp()  # 09:30 BST, a Wednesday
    weekday, hour = index.local(np.array([summer]))
    assert (int(weekday[0]), float(hour[0])) == (2, 9.5)
