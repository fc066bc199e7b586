"""Workload rebalancing on the time-skipping server (issue #12's acceptance): with four
cases at risk on one person and idle teammates, one run moves exactly the surplus (to the
least-loaded teammates, audited, each person told), and a second run moves nothing. A team
that does not rebalance automatically gets proposals instead, and nothing moves."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from core.settings import ConsoleUser, RebalanceTeam, Role
from playbooks.registry import CaseTypeRegistry
from schemas.contracts import REBALANCE_WORKFLOW, RebalanceInput, RebalanceReport
from schemas.engine_commands import AssignWork, CommandResult, Decide
from store.db import SessionFactory
from store.models import Case, CaseEvent
from tests.conftest import test_settings
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import snapshot, start, wait_for
from tests.engine.test_escalations import _start_type
from tests.waiting import eventually

TEAM = "relationship_manager"
ACCOUNT_REVIEW = """\
name: account_review
version: "1"
title: Account review
stages:
  - key: review
    title: Review
    owner_role: relationship_manager
    sla: 8h
    warn_at: [0.5]
    elements:
      - {key: call_client, kind: task, title: Call the client, assignee_role: relationship_manager}
"""


def _people(tag: str) -> dict[str, ConsoleUser]:
    return {
        f"{name}-{tag}": ConsoleUser(
            name=name.title(), role=Role.RELATIONSHIP_MANAGER, password_hash=SecretStr("unused")
        )
        for name in ("ann", "ben", "cat")
    }


async def _four_cases_at_risk_on_ann(
    env: Any, sessions: SessionFactory, worker: Any, tmp_path: Path, ann: str
) -> list[Any]:
    folder = tmp_path / "types"
    folder.mkdir()
    (folder / "account_review.yaml").write_text(ACCOUNT_REVIEW, encoding="utf-8")
    ct = CaseTypeRegistry.load([folder], known_roles=test_settings().known_roles()).get(
        "account_review"
    )
    handles = []
    for _ in range(4):
        _, handle = await _start_type(
            env.client, sessions, worker.task_queue, ct, worker.started_cases
        )
        await wait_for(handle, lambda s: any(e.status == "active" for e in s.elements))
        await handle.execute_update(
            "assign",
            AssignWork(actor="lead", role="case_manager", assignee=ann, assignee_team=TEAM),
            result_type=CommandResult,
        )
        handles.append(handle)
    await env.sleep(timedelta(hours=5))  # past the 50% warning of every 8h stage

    async def states() -> list[str | None]:
        async with sessions() as s:
            ids = [h.id for h in handles]
            return list(await s.scalars(select(Case.sla_state).where(Case.workflow_id.in_(ids))))

    await eventually(states, lambda got: got == ["warning"] * 4, what="four cases at risk")
    return handles


async def _run(env: Any, worker: Any) -> RebalanceReport:
    return await env.client.execute_workflow(
        REBALANCE_WORKFLOW,
        RebalanceInput(trigger="manual", requested_by="test"),
        id=f"rebalance-test-{uuid.uuid4().hex[:8]}",
        task_queue=worker.task_queue,
        result_type=RebalanceReport,
    )


async def test_one_run_moves_the_surplus_and_a_second_run_nothing(
    time_skipping_env: Any, sessions: SessionFactory, tmp_path: Path
) -> None:
    env = time_skipping_env
    tag = uuid.uuid4().hex[:6]
    people = _people(tag)
    ann, ben, cat = sorted(people)
    settings = test_settings(
        console_users=people, rebalance_teams={TEAM: RebalanceTeam(threshold=3, auto=True)}
    )
    async with engine_worker(env.client, sessions, settings) as worker:
        handles = await _four_cases_at_risk_on_ann(env, sessions, worker, tmp_path, ann)

        first = await _run(env, worker)
        # threshold 3: ann keeps 2; the two most urgent go, one to each idle teammate
        assert (first.moved, first.proposed, first.refused) == (2, 0, 0)
        assert sorted(m.to_person for m in first.moves) == [ben, cat]
        assert {m.from_person for m in first.moves} == {ann}
        holders = [(await snapshot(h)).assignee for h in handles]
        assert sorted(h or "" for h in holders) == sorted([ann, ann, ben, cat])

        second = await _run(env, worker)
        assert (second.moved, second.proposed, second.refused) == (0, 0, 0)
        assert [(await snapshot(h)).assignee for h in handles] == holders

        async def audit() -> list[CaseEvent]:
            async with sessions() as s:
                refs = [m.case_ref for m in first.moves]
                rows = await s.scalars(
                    select(CaseEvent).where(
                        CaseEvent.case_ref.in_(refs), CaseEvent.kind == "work_reassigned"
                    )
                )
                return list(rows)

        rows = await eventually(audit, lambda rows: len(rows) == 2, what="audited moves")
        assert {(r.actor, r.detail["from"], r.detail["via"]) for r in rows} == {
            ("rebalancing", ann, "rebalancing")
        }
        assert all("held 4 items at risk" in r.detail["reason"] for r in rows)


async def test_a_team_without_auto_gets_proposals_and_nothing_moves(
    time_skipping_env: Any, sessions: SessionFactory, tmp_path: Path
) -> None:
    env = time_skipping_env
    tag = uuid.uuid4().hex[:6]
    people = _people(tag)
    ann = sorted(people)[0]
    settings = test_settings(console_users=people)  # default: threshold 3, proposals only
    async with engine_worker(env.client, sessions, settings) as worker:
        handles = await _four_cases_at_risk_on_ann(env, sessions, worker, tmp_path, ann)
        report = await _run(env, worker)
        assert (report.moved, report.proposed) == (0, 2)
        assert all(m.status == "proposed" and m.from_person == ann for m in report.moves)
        assert [(await snapshot(h)).assignee for h in handles] == [ann] * 4


async def test_a_half_given_approval_keeps_its_approver(
    time_skipping_env: Any, sessions: SessionFactory
) -> None:
    env = time_skipping_env
    async with engine_worker(env.client, sessions) as worker:
        _, handle = await start(
            env.client,
            sessions,
            worker.task_queue,
            "order_approval",
            data={"order_id": "PO-9", "order_value": 90000, "currency": "GBP", "items": 1},
            started=worker.started_cases,
        )
        await wait_for(handle, lambda s: "decide" in s.allowed_actions)

        def move(via: Literal["person", "rebalancing"]) -> AssignWork:
            return AssignWork(
                actor="rebalancing",
                role="admin",
                element="group_approval",
                assignee="kofi",
                assignee_team="case_manager",
                reason="surplus",
                if_held_by="maria",
                via=via,
            )

        await handle.execute_update(
            "assign",
            AssignWork(
                actor="maria",
                role="case_manager",
                element="group_approval",
                assignee="maria",
                assignee_team="case_manager",
            ),
            result_type=CommandResult,
        )
        await handle.execute_update(
            "decide", Decide(actor="maria", decision="approve"), result_type=CommandResult
        )
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update("assign", move("rebalancing"), result_type=CommandResult)
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == "WrongState"
        assert "half approved; the case keeps its approver" in refused.value.cause.message
        # a person may still hand it over, with a reason
        await handle.execute_update("assign", move("person"), result_type=CommandResult)
        state = await snapshot(handle)
        approval = next(e for e in state.elements if e.key == "group_approval")
        assert approval.assignee == "kofi" and len(approval.votes) == 1
