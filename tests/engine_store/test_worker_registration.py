"""The worker binds the engine's activity names (and keeps every existing one)."""

from __future__ import annotations

from temporalio import activity

from schemas.contracts import PROJECT_CASE, RUN_AUTOMATION, SYNC_CASE
from tests.conftest import test_settings
from workers.main import build_activities


def test_the_worker_registers_the_engine_activities(sessions):
    names = [
        defn.name
        for fn in build_activities(test_settings(), sessions)
        if (defn := activity._Definition.from_callable(fn)) is not None
    ]
    assert {PROJECT_CASE, SYNC_CASE, RUN_AUTOMATION} <= set(names)
    assert {"project_case", "notify", "deliver_webhook", "provision_account"} <= set(names)
    assert len(names) == len(set(names)), "each name bound once"
