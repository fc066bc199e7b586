"""The breach model inside a running case: at the predictive check, with the 60/40 rule quiet
(half the tasks done), the case asks the predict_breach activity and raises at-risk when the
probability reaches its stage's ``breach_probability``, saying why."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from playbooks.registry import CaseTypeRegistry
from schemas.engine_commands import CommandResult, CompleteTaskCmd
from store import learned_models
from store.db import SessionFactory
from store.models import CaseEvent, LearnedModel
from tests.conftest import test_settings
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import wait_for
from tests.engine.test_escalations import _start_type
from tests.waiting import eventually

DESK = """\
name: desk_check
version: "1"
title: Desk check
stages:
  - key: review
    title: Review
    owner_role: case_manager
    sla: 10h
    predictive: {at: 0.6, min_tasks_done: 0.4, breach_probability: 0.01}
    elements:
      - {key: first_look, kind: task, title: First look, assignee_role: case_manager}
      - {key: second_look, kind: task, title: Second look, assignee_role: case_manager}
"""


async def test_the_breach_model_raises_at_risk_when_the_rule_is_quiet(
    time_skipping_env: Any, sessions: SessionFactory, history: Any, tmp_path: Path
) -> None:
    from analytics.risk import fit

    model = fit(history, holdout=0)
    async with sessions.begin() as session:
        await learned_models.save(session, model.to_record())
    folder = tmp_path / "types"
    folder.mkdir()
    (folder / "desk_check.yaml").write_text(DESK, encoding="utf-8")
    ct = CaseTypeRegistry.load([folder], known_roles=test_settings().known_roles()).get(
        "desk_check"
    )
    env = time_skipping_env
    try:
        async with engine_worker(env.client, sessions) as worker:
            ref, handle = await _start_type(
                env.client, sessions, worker.task_queue, ct, worker.started_cases
            )
            await wait_for(handle, lambda s: any(e.status == "active" for e in s.elements))
            await handle.execute_update(
                "complete_task",
                CompleteTaskCmd(actor="cm", task_key="first_look"),
                result_type=CommandResult,
            )
            await env.sleep(timedelta(hours=6, minutes=30))  # past 60% of 10h
            state = await wait_for(handle, lambda s: s.sla is not None and s.sla.state == "at_risk")
            assert state.priority == "high"

            async def said() -> list[CaseEvent]:
                async with sessions() as s:
                    rows = await s.scalars(
                        select(CaseEvent).where(
                            CaseEvent.case_ref == ref, CaseEvent.kind == "sla_at_risk"
                        )
                    )
                    return list(rows)

            (event,) = await eventually(said, lambda rows: len(rows) == 1, what="at risk")
            # the model decided (the rule was quiet: one of two tasks done)
            assert event.detail["model"] == model.version
            assert 0.01 <= event.detail["probability"] <= 1
    finally:
        async with sessions.begin() as session:
            await session.execute(delete(LearnedModel).where(LearnedModel.version == model.version))
