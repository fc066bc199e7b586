"""Whoever works the case hears of it: a client's message goes to its holder (else the stage's
owners), and SLA alerts go to the holder as well as the owners."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from schemas.engine_commands import AssignWork, ClientMessage, CommandResult
from store.db import SessionFactory
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import start, wait_for
from tests.engine.test_escalations import DIRECTORY, _staff_rows

ORDER = {"order_id": "PO-7", "order_value": 60000, "currency": "GBP", "items": 1}


async def test_a_client_message_reaches_the_owner_then_the_holder(
    time_skipping_env: Any, sessions: SessionFactory
) -> None:
    env = time_skipping_env
    async with engine_worker(env.client, sessions) as worker:
        ref, handle = await start(
            env.client,
            sessions,
            worker.task_queue,
            "order_approval",
            data=ORDER,
            started=worker.started_cases,
        )
        await wait_for(handle, lambda s: "decide" in s.allowed_actions)
        said = await handle.execute_update(
            "client_message",
            ClientMessage(actor="client", role="client", text="Any news on my order?"),
            result_type=CommandResult,
        )
        assert "on the case" in said.message
        (row,) = await _staff_rows(sessions, ref, "client_replied", 1)
        # nobody holds the case: the approval stage's owners (case managers) hear of it
        assert row.recipient == DIRECTORY["case_manager"]
        assert "Any news on my order?" in row.body_text

        await handle.execute_update(
            "assign",
            AssignWork(
                actor="lead",
                role="case_manager",
                assignee="rita",
                assignee_team="compliance_reviewer",
            ),
            result_type=CommandResult,
        )
        await handle.execute_update(
            "client_message",
            ClientMessage(actor="client", role="client", text="Still waiting.", channel="sms"),
            result_type=CommandResult,
        )
        rows = await _staff_rows(sessions, ref, "client_replied", 2)
        # now rita holds it: her notice (no address of her own: her team's)
        latest = max(rows, key=lambda r: r.id)
        assert latest.recipient == DIRECTORY["compliance_reviewer"]
        assert "Still waiting." in latest.body_text and "sms" in latest.body_text


async def test_sla_alerts_reach_the_person_holding_the_case_too(
    time_skipping_env: Any, sessions: SessionFactory
) -> None:
    env = time_skipping_env
    async with engine_worker(env.client, sessions) as worker:
        ref, handle = await start(
            env.client,
            sessions,
            worker.task_queue,
            "order_approval",
            data=ORDER,
            started=worker.started_cases,
        )
        await wait_for(handle, lambda s: "decide" in s.allowed_actions)
        await handle.execute_update(
            "assign",
            AssignWork(
                actor="lead",
                role="case_manager",
                assignee="rita",
                assignee_team="compliance_reviewer",
            ),
            result_type=CommandResult,
        )
        await env.sleep(timedelta(hours=7))  # past the at-risk check (60%) and the warning (80%)
        for milestone in ("sla_at_risk", "sla_warning"):
            rows = await _staff_rows(sessions, ref, milestone, 2)
            # the stage's owners (case managers), and rita at her team's address
            assert {r.recipient for r in rows} == {
                DIRECTORY["case_manager"],
                DIRECTORY["compliance_reviewer"],
            }
