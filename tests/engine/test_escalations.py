"""SLA warning, breach and escalation levels on the time-skipping server: who is told, once.

client_onboarding's document_collection: 24h SLA, warning at 80% (19h12m) to the owner role
(onboarding_team), breach at 24h, L1 at breach to onboarding_lead, L2 4h later to
head_of_operations. Each point is checked a minute before (nothing yet) and a minute after
(the staff e-mail in ``notifications``, the audit event in ``case_events``), and nothing is
repeated when more time passes. A third level is checked with a case type written to a tmp
folder (the shipped types stop at two).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from playbooks.registry import CaseTypeRegistry
from schemas.casetype import CaseType
from schemas.contracts import CASE_WORKFLOW, EngineCaseInput
from schemas.engine_commands import AcknowledgeEscalation, CommandResult
from schemas.snapshot import CaseSnapshot
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import NotificationRow
from tests.conftest import new_ref, test_settings
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import profile, snapshot, start, wait_for
from tests.engine.readmodel import events, eventually, notifications

MINUTE = timedelta(minutes=1)
SLA_NOTICES = ("sla_warning", "sla_at_risk", "sla_breached", "sla_escalated")
DIRECTORY = test_settings().staff_directory
TEAM = DIRECTORY["onboarding_team"]
LEAD = DIRECTORY["onboarding_lead"]
HEAD = DIRECTORY["head_of_operations"]


async def _sleep_until(env: Any, at: datetime) -> None:
    now = await env.get_current_time()
    assert at > now, f"{at} is already past ({now})"
    await env.sleep(at - now)


async def _staff(sessions: SessionFactory, ref: str, milestone: str) -> list[NotificationRow]:
    return [r for r in await notifications(sessions, ref, milestone) if r.audience == "staff"]


async def _staff_rows(
    sessions: SessionFactory, ref: str, milestone: str, n: int
) -> list[NotificationRow]:
    """Wait for ``n`` staff rows of ``milestone``; then check there are exactly ``n``, all
    delivered by e-mail."""
    rows = await eventually(lambda: _staff(sessions, ref, milestone), lambda rows: len(rows) >= n)
    assert len(rows) == n, [(r.recipient, r.outbox_key) for r in rows]
    assert all(r.channel == "email" and r.status not in ("failed", "queued") for r in rows), [
        (r.channel, r.status, r.error) for r in rows
    ]
    return rows


def _level(state: CaseSnapshot) -> int:
    return state.sla.escalation_level if state.sla is not None else -1


def _at_level(n: int) -> Callable[[CaseSnapshot], bool]:
    return lambda state: _level(state) == n


def _per_recipient(rows: list[NotificationRow]) -> dict[str | None, int]:
    counts: dict[str | None, int] = {}
    for r in rows:
        counts[r.recipient] = counts.get(r.recipient, 0) + 1
    return counts


async def _all_sla_rows(sessions: SessionFactory, ref: str) -> list[NotificationRow]:
    return [r for r in await notifications(sessions, ref) if r.milestone in SLA_NOTICES]


async def test_onboarding_documents_warning_breach_and_two_escalation_levels(
    time_skipping_env, sessions
):
    env = time_skipping_env
    async with engine_worker(env.client, sessions) as worker:
        ref, handle = await start(
            env.client,
            sessions,
            worker.task_queue,
            "client_onboarding",
            client_profile=profile(),
            started=worker.started_cases,
        )
        state = await wait_for(
            handle,
            lambda s: (
                s.stage == "document_collection" and s.sla is not None and s.sla.due_at is not None
            ),
        )
        assert state.sla is not None and state.sla.due_at is not None
        assert state.sla.budget_seconds == 24 * 3600
        entered = state.sla.due_at - timedelta(hours=24)

        # Warning at 80% of 24h (19h12m), to the owner role only.
        await _sleep_until(env, entered + timedelta(hours=19, minutes=12) - MINUTE)
        assert await _staff(sessions, ref, "sla_warning") == []
        assert await events(sessions, ref, "sla_warning") == []
        await _sleep_until(env, entered + timedelta(hours=19, minutes=12) + MINUTE)
        state = await wait_for(handle, lambda s: s.sla is not None and s.sla.state == "warning")
        warned = await _staff_rows(sessions, ref, "sla_warning", 1)
        assert warned[0].recipient == TEAM
        warning_events = await eventually(
            lambda: events(sessions, ref, "sla_warning"), lambda rows: len(rows) == 1
        )
        assert warning_events[0].detail["stage"] == "document_collection"

        # Breach at 24h, and L1 (after_breach 0h) with it.
        await _sleep_until(env, entered + timedelta(hours=24) - MINUTE)
        assert await _staff(sessions, ref, "sla_breached") == []
        assert await _staff(sessions, ref, "sla_escalated") == []
        assert _level(await snapshot(handle)) == 0
        await _sleep_until(env, entered + timedelta(hours=24) + MINUTE)
        state = await wait_for(handle, _at_level(1))
        assert state.sla is not None and state.sla.state == "breached"
        breached = await _staff_rows(sessions, ref, "sla_breached", 1)
        assert breached[0].recipient == TEAM
        l1 = await _staff_rows(sessions, ref, "sla_escalated", 2)
        assert _per_recipient(l1) == {LEAD: 1, TEAM: 1}

        # L2 four hours after the breach.
        await _sleep_until(env, entered + timedelta(hours=28) - MINUTE)
        assert len(await _staff(sessions, ref, "sla_escalated")) == 2
        await _sleep_until(env, entered + timedelta(hours=28) + MINUTE)
        state = await wait_for(handle, _at_level(2))
        l2 = await _staff_rows(sessions, ref, "sla_escalated", 4)
        assert _per_recipient(l2) == {LEAD: 1, HEAD: 1, TEAM: 2}

        escalated = await eventually(
            lambda: events(sessions, ref, "sla_escalated"), lambda rows: len(rows) == 2
        )
        assert [(e.detail["level"], e.detail["target"]) for e in escalated] == [
            (1, "onboarding_lead"),
            (2, "head_of_operations"),
        ]
        assert all(e.detail["stage"] == "document_collection" for e in escalated)
        assert len(await events(sessions, ref, "sla_breached")) == 1

        # A day later: nothing fired again.
        await env.sleep(timedelta(hours=24))
        state = await snapshot(handle)
        assert state.stage == "document_collection"
        assert state.sla is not None and state.sla.escalation_level == 2
        assert len(await _staff(sessions, ref, "sla_warning")) == 1
        assert len(await _staff(sessions, ref, "sla_breached")) == 1
        assert _per_recipient(await _staff(sessions, ref, "sla_escalated")) == {
            LEAD: 1,
            HEAD: 1,
            TEAM: 2,
        }
        assert len(await events(sessions, ref, "sla_escalated")) == 2
        sla_rows = await _all_sla_rows(sessions, ref)
        keys = [r.outbox_key for r in sla_rows]
        assert len(keys) == len(set(keys)), keys


THREE_LEVELS = """\
name: three_level_escalation
version: "1"
title: Three escalation levels
stages:
  - key: triage
    title: Triage
    owner_role: case_manager
    sla: 4h
    warn_at: [0.5]
    escalations:
      - {level: 1, after_breach: 0h, target: onboarding_lead}
      - {level: 2, after_breach: 1h, target: compliance_lead}
      - {level: 3, after_breach: 3h, target: head_of_operations}
    elements:
      - {key: look_at_it, kind: task, title: Look at it, assignee_role: case_manager}
"""


def _three_level_type(folder: Path, *, stop_when_acknowledged: bool = False) -> CaseType:
    folder.mkdir()
    text = THREE_LEVELS
    if stop_when_acknowledged:
        text = text.replace(
            "    escalations:\n", "    escalations_stop_when_acknowledged: true\n    escalations:\n"
        )
    (folder / "three_level_escalation.yaml").write_text(text, encoding="utf-8")
    settings = test_settings()
    registry = CaseTypeRegistry.load([folder], known_roles=settings.known_roles())
    return registry.get("three_level_escalation")


async def _start_type(
    client: Client,
    sessions: SessionFactory,
    task_queue: str,
    ct: CaseType,
    started: list[Any],
    calendars: dict[str, Any] | None = None,
) -> tuple[str, WorkflowHandle[Any, Any]]:
    """``tests.engine.helpers.start`` for a case type outside the shipped folders."""
    ref = new_ref("ESC")
    workflow_id = f"{ct.name}-{ref}"
    who = profile()
    async with sessions.begin() as s:
        await s.execute(
            insert_draft_case(
                ref=ref,
                client=who,
                requested_by="test",
                case_type=ct.name,
                case_type_version=ct.version,
                engine="case",
                data={},
                workflow_id=workflow_id,
                first_stage=ct.stages[0].key,
                access_roles=list(ct.stages[0].access),
            )
        )
    handle = await client.start_workflow(
        CASE_WORKFLOW,
        EngineCaseInput(
            case_ref=ref,
            workflow_id=workflow_id,
            case_type=ct,
            client=who,
            data={},
            requested_by="test",
            subprocess_types={},
            calendars=calendars or {},
            row_exists=True,
        ),
        id=workflow_id,
        task_queue=task_queue,
    )
    started.append(handle)
    return ref, handle


async def test_three_escalation_levels_each_reach_their_role_once(
    time_skipping_env, sessions, tmp_path
):
    env = time_skipping_env
    ct = _three_level_type(tmp_path / "case_types")
    owner = DIRECTORY["case_manager"]
    targets = {
        1: DIRECTORY["onboarding_lead"],
        2: DIRECTORY["compliance_lead"],
        3: DIRECTORY["head_of_operations"],
    }
    async with engine_worker(env.client, sessions) as worker:
        ref, handle = await _start_type(
            env.client, sessions, worker.task_queue, ct, worker.started_cases
        )
        state = await wait_for(handle, lambda s: s.sla is not None and s.sla.due_at is not None)
        assert state.sla is not None and state.sla.due_at is not None
        breach = state.sla.due_at

        for level, after in ((1, timedelta(0)), (2, timedelta(hours=1)), (3, timedelta(hours=3))):
            await _sleep_until(env, breach + after - MINUTE)
            assert _level(await snapshot(handle)) == level - 1
            await _sleep_until(env, breach + after + MINUTE)
            await wait_for(handle, _at_level(level))
            rows = await _staff_rows(sessions, ref, "sla_escalated", 2 * level)
            expected = {targets[n]: 1 for n in range(1, level + 1)} | {owner: level}
            assert _per_recipient(rows) == expected

        await env.sleep(timedelta(hours=12))
        rows = await _staff(sessions, ref, "sla_escalated")
        assert _per_recipient(rows) == {**{t: 1 for t in targets.values()}, owner: 3}
        assert len(await _staff(sessions, ref, "sla_breached")) == 1
        assert len(await _staff(sessions, ref, "sla_warning")) == 1
        escalated = await events(sessions, ref, "sla_escalated")
        assert [(e.detail["level"], e.detail["target"]) for e in escalated] == [
            (1, "onboarding_lead"),
            (2, "compliance_lead"),
            (3, "head_of_operations"),
        ]
        keys = [r.outbox_key for r in await _all_sla_rows(sessions, ref)]
        assert len(keys) == len(set(keys)), keys
        assert (await snapshot(handle)).priority == "critical"  # priority follows the level


async def test_acknowledging_an_escalation_holds_back_the_later_levels(
    time_skipping_env, sessions, tmp_path
):
    """The lead acknowledges level 1: levels 2 and 3 are recorded on the timeline as held,
    and nobody else is paged. A second acknowledgement of the same level is refused."""
    env = time_skipping_env
    ct = _three_level_type(tmp_path / "case_types", stop_when_acknowledged=True)
    async with engine_worker(env.client, sessions) as worker:
        ref, handle = await _start_type(
            env.client, sessions, worker.task_queue, ct, worker.started_cases
        )
        state = await wait_for(handle, lambda s: s.sla is not None and s.sla.due_at is not None)
        assert state.sla is not None and state.sla.due_at is not None
        breach = state.sla.due_at
        assert "acknowledge_escalation" not in state.allowed_actions
        with pytest.raises(WorkflowUpdateFailedError) as early:
            await _acknowledge(handle, "lead")
        assert "no escalation to acknowledge" in str(early.value.cause)

        await _sleep_until(env, breach + MINUTE)
        state = await wait_for(handle, _at_level(1))
        assert "acknowledge_escalation" in state.allowed_actions
        done = await _acknowledge(handle, "lead", note="on it")
        assert done.message == "escalation level 1 acknowledged; later levels are held back"
        with pytest.raises(WorkflowUpdateFailedError) as twice:
            await _acknowledge(handle, "someone else")
        assert "already acknowledged by lead" in str(twice.value.cause)

        await _sleep_until(env, breach + timedelta(hours=5))
        await eventually(
            lambda: events(sessions, ref, "sla_escalation_held"), lambda rows: len(rows) == 2
        )
        state = await snapshot(handle)
        assert state.sla is not None
        assert (state.sla.escalation_level, state.sla.acknowledged_level) == (1, 1)
        assert state.sla.acknowledged_by == "lead"
        rows = await _staff(sessions, ref, "sla_escalated")
        assert _per_recipient(rows) == {
            DIRECTORY["onboarding_lead"]: 1,
            DIRECTORY["case_manager"]: 1,
        }, "level 2 and 3 targets were paged after the acknowledgement"
        held = await events(sessions, ref, "sla_escalation_held")
        assert [e.detail["level"] for e in held] == [2, 3]
        acked = await events(sessions, ref, "sla_escalation_acknowledged")
        assert [(e.actor, e.detail["level"], e.detail["note"]) for e in acked] == [
            ("lead", 1, "on it")
        ]


async def test_without_the_stop_rule_an_acknowledgement_is_recorded_and_levels_go_on(
    time_skipping_env, sessions, tmp_path
):
    env = time_skipping_env
    ct = _three_level_type(tmp_path / "case_types")
    async with engine_worker(env.client, sessions) as worker:
        ref, handle = await _start_type(
            env.client, sessions, worker.task_queue, ct, worker.started_cases
        )
        state = await wait_for(handle, lambda s: s.sla is not None and s.sla.due_at is not None)
        assert state.sla is not None and state.sla.due_at is not None
        breach = state.sla.due_at
        await _sleep_until(env, breach + MINUTE)
        await wait_for(handle, _at_level(1))
        done = await _acknowledge(handle, "lead")
        assert done.message.endswith("later levels still follow")
        await _sleep_until(env, breach + timedelta(hours=1) + MINUTE)
        state = await wait_for(handle, _at_level(2))
        assert "acknowledge_escalation" in state.allowed_actions  # a new level, a new owner
        rows = await _staff_rows(sessions, ref, "sla_escalated", 4)
        assert DIRECTORY["compliance_lead"] in _per_recipient(rows)


async def _acknowledge(
    handle: WorkflowHandle[Any, Any], actor: str, note: str | None = None
) -> CommandResult:
    return await handle.execute_update(
        "acknowledge_escalation",
        AcknowledgeEscalation(actor=actor, note=note),
        result_type=CommandResult,
    )
