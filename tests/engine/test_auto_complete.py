"""Straight-through processing: a stage's ``auto_complete`` rule signs off its people steps as
``system`` and the audit names the rule; any step a person had to take, or a pause, keeps the
later steps with people too (fixture ``straight_through``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from schemas.engine_commands import (
    CommandResult,
    CompleteTaskCmd,
    PauseCase,
    ProposalResponse,
    ResumeCase,
)
from store.db import SessionFactory
from store.models import CaseEvent
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import start, wait_for
from tests.waiting import eventually

TYPE = "straight_through"


def at_review_with_people(state: Any) -> bool:
    return bool(state.stage == "review" and "tick" in state.allowed_actions)


async def _events(sessions: SessionFactory, ref: str, kind: str) -> list[CaseEvent]:
    async with sessions() as s:
        query = select(CaseEvent).where(CaseEvent.case_ref == ref, CaseEvent.kind == kind)
        return list(await s.scalars(query.order_by(CaseEvent.id)))


async def test_a_small_low_risk_case_is_signed_off_by_the_rule(
    time_skipping_env: Any, sessions: SessionFactory
) -> None:
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            TYPE,
            data={"amount": 200, "risk": "low"},
            started=worker.started_cases,
        )
        state = await wait_for(handle, lambda s: s.status == "resolved")

        assert state.resolution == "completed"
        steps = {e.key: (e.status, e.done_by, e.note) for e in state.elements}
        rule_note = "straight-through: rule small_low_risk"
        assert steps == {
            "final_checks": ("done", "system", rule_note),
            "sign_off": ("done", "system", rule_note),
        }
        assert [v.actor for v in state.approvals] == ["system"]
        review = state.history[-1]
        assert review.stage == "review" and review.exited_at is not None
        assert review.sla_outcome == "met" and review.active_seconds is not None

        audit = await eventually(
            lambda: _events(sessions, ref, "auto_completed"), lambda rows: len(rows) == 2
        )
        assert {(e.actor, e.detail["element"], e.detail["rule"]) for e in audit} == {
            ("system", "final_checks", "small_low_risk"),
            ("system", "sign_off", "small_low_risk"),
        }


async def test_high_risk_waits_for_a_person(time_skipping_env: Any, sessions: SessionFactory):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        _, handle = await start(
            client,
            sessions,
            worker.task_queue,
            TYPE,
            data={"amount": 200, "risk": "high"},
            started=worker.started_cases,
        )
        state = await wait_for(handle, at_review_with_people)
        checks = next(e for e in state.elements if e.key == "final_checks")
        assert checks.status == "active" and checks.done_by is None


async def test_the_clients_own_answer_is_no_staff_step(
    time_skipping_env: Any, sessions: SessionFactory
) -> None:
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        _, handle = await start(
            client,
            sessions,
            worker.task_queue,
            TYPE,
            data={"amount": 5000, "risk": "low"},
            started=worker.started_cases,
        )
        await wait_for(handle, lambda s: s.proposal is not None)
        await handle.execute_update(
            "respond_to_proposal",
            ProposalResponse(actor="client", role="client", accept=True),
            result_type=CommandResult,
        )
        state = await wait_for(handle, lambda s: s.status == "resolved")
        assert {e.key: e.done_by for e in state.elements} == {
            "final_checks": "system",
            "sign_off": "system",
        }


async def test_a_step_staff_took_keeps_the_review_with_people(
    time_skipping_env: Any, sessions: SessionFactory
) -> None:
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        _, handle = await start(
            client,
            sessions,
            worker.task_queue,
            TYPE,
            data={"amount": 200000, "risk": "low"},
            started=worker.started_cases,
        )
        await wait_for(handle, lambda s: s.proposal is not None)
        await handle.execute_update(
            "respond_to_proposal",
            ProposalResponse(actor="client", role="client", accept=True),
            result_type=CommandResult,
        )
        await wait_for(handle, lambda s: "complete_task" in s.allowed_actions)
        await handle.execute_update(
            "complete_task",
            CompleteTaskCmd(actor="maria", task_key="large_amount_check", note="checked"),
            result_type=CommandResult,
        )
        state = await wait_for(handle, at_review_with_people)
        assert all(e.done_by is None for e in state.elements)
        assert state.status == "open"


async def test_a_case_that_was_paused_keeps_the_review_with_people(
    time_skipping_env: Any, sessions: SessionFactory
) -> None:
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        _, handle = await start(
            client,
            sessions,
            worker.task_queue,
            TYPE,
            data={"amount": 5000, "risk": "low"},
            started=worker.started_cases,
        )
        await wait_for(handle, lambda s: s.proposal is not None)
        await handle.execute_update(
            "pause", PauseCase(actor="maria", reason="client called"), result_type=CommandResult
        )
        await handle.execute_update("resume", ResumeCase(actor="maria"), result_type=CommandResult)
        await handle.execute_update(
            "respond_to_proposal",
            ProposalResponse(actor="client", role="client", accept=True),
            result_type=CommandResult,
        )
        state = await wait_for(handle, at_review_with_people)
        assert all(e.done_by is None for e in state.elements)
