"""The read model can never wedge a case.

1. A pause whose reason holds a NUL, sent straight through the Temporal client (the API would
   answer 422): the workflow refuses it while decoding the update's argument (``PauseCase``
   validates its text), so it never reaches history and the case carries on untouched.
2. A NUL that does get in (case data given to a case started outside the API, e.g. from the
   Temporal CLI): the projection carrying it is refused by Postgres and dead-lettered into
   ``projection_dead_letters``; the case still pauses, resumes and cancels, and those later
   writes land in the read model.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from schemas.contracts import CASE_WORKFLOW, EngineCaseInput
from schemas.engine_commands import CancelCaseCmd, CommandResult, PauseCase, ResumeCase
from schemas.snapshot import CaseSnapshot
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import CasePauseRow
from tests.conftest import new_ref
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import profile, registry, snapshot, start, wait_for
from tests.engine.readmodel import case_row, dead_letters, events, eventually, kinds, visits

ORDER = {"order_id": "PO-DL-1", "order_value": 60000, "currency": "GBP", "items": 2}


def _approval_open(s: CaseSnapshot) -> bool:
    return any(e.key == "group_approval" and e.status == "active" for e in s.elements)


async def _pauses(sessions: SessionFactory, ref: str) -> list[CasePauseRow]:
    async with sessions() as s:
        rows = await s.scalars(
            select(CasePauseRow).where(CasePauseRow.case_ref == ref).order_by(CasePauseRow.seq)
        )
        return list(rows.all())


async def _accepted_updates(handle: WorkflowHandle[Any, Any]) -> list[str]:
    names = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            names.append(
                event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
            )
    return names


async def test_a_nul_in_a_pause_reason_is_refused_before_history(time_skipping_env, sessions):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "order_approval",
            data=ORDER,
            started=worker.started_cases,
        )
        await wait_for(handle, _approval_open)
        raw = {"actor": "cm1", "role": "case_manager", "reason": "on hold\x00 until Monday"}
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update("pause", raw, result_type=CommandResult)
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError)
        assert "Failed decoding arguments" in str(cause)
        state = await snapshot(handle)
        assert state.status == "open" and state.pauses == []
        assert await _accepted_updates(handle) == []

        # The case is not wedged: a clean pause goes through and is projected.
        await handle.execute_update(
            "pause",
            PauseCase(actor="cm1", role="case_manager", reason="on hold until Monday"),
            result_type=CommandResult,
        )
        assert (await snapshot(handle)).status == "paused"
        assert await _accepted_updates(handle) == ["pause"]
        rows = await eventually(lambda: _pauses(sessions, ref), lambda rows: len(rows) == 1)
        assert rows[0].reason == "on hold until Monday"
        assert await dead_letters(sessions, ref) == []


async def test_a_refused_projection_is_dead_lettered_and_the_case_goes_on(
    time_skipping_env, sessions
):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        # Started outside the API: the row holds clean data, the workflow input a NUL.
        case_type = registry().get("order_approval")
        ref = new_ref("DL")
        workflow_id = f"{case_type.workflow_prefix}-{ref}"
        who = profile()
        async with sessions.begin() as s:
            await s.execute(
                insert_draft_case(
                    ref=ref,
                    client=who,
                    requested_by="cli",
                    case_type=case_type.name,
                    case_type_version=case_type.version,
                    engine="case",
                    data=ORDER,
                    workflow_id=workflow_id,
                    first_stage=case_type.stages[0].key,
                    access_roles=list(case_type.stages[0].access),
                )
            )
        handle = await client.start_workflow(
            CASE_WORKFLOW,
            EngineCaseInput(
                case_ref=ref,
                workflow_id=workflow_id,
                case_type=case_type,
                client=who,
                data={**ORDER, "order_id": "PO-DL\x00-1"},
                requested_by="cli",
            ),
            id=workflow_id,
            task_queue=worker.task_queue,
        )
        worker.started_cases.append(handle)

        # The first write (case opened, intake entered: written while intake's ETA is asked)
        # is refused and parked.
        await wait_for(handle, _approval_open)
        parked = await eventually(lambda: dead_letters(sessions, ref), lambda rows: len(rows) >= 1)
        assert parked[0].version == 1
        assert parked[0].resolved_at is None
        assert parked[0].error.isascii() and "\x00" not in parked[0].error
        payload = json.loads(parked[0].payload)  # the refused write, kept for an operator
        assert payload["seed"]["data"]["order_id"] == "PO-DL\x00-1"
        assert "case_opened" in [e["kind"] for e in payload["events"]]
        assert [v["stage"] for v in payload["visits"]] == ["intake"]

        # The case still pauses, resumes and cancels; each of those writes lands.
        await handle.execute_update(
            "pause",
            PauseCase(actor="cm1", role="case_manager", reason="waiting for the buyer"),
            result_type=CommandResult,
        )
        assert (await snapshot(handle)).status == "paused"
        row = await eventually(
            lambda: case_row(sessions, ref), lambda c: c is not None and c.status == "paused"
        )
        assert row is not None and row.stage == "approval" and row.ever_paused
        pause = await eventually(lambda: _pauses(sessions, ref), lambda rows: len(rows) == 1)
        assert pause[0].reason == "waiting for the buyer" and pause[0].resumed_at is None

        await handle.execute_update(
            "resume",
            ResumeCase(actor="cm2", role="case_manager", reason="buyer answered"),
            result_type=CommandResult,
        )
        assert (await snapshot(handle)).status == "open"
        pause = await eventually(
            lambda: _pauses(sessions, ref), lambda rows: rows[0].resumed_at is not None
        )
        assert pause[0].resumed_by == "cm2" and pause[0].resume_reason == "buyer answered"
        row = await eventually(
            lambda: case_row(sessions, ref), lambda c: c is not None and c.status == "open"
        )

        await handle.execute_update(
            "cancel",
            CancelCaseCmd(
                actor="cm1",
                role="case_manager",
                closure_code="customer_cancelled",
                reason="order withdrawn",
            ),
            result_type=CommandResult,
        )
        outcome = await handle.result()
        assert outcome["status"] == "cancelled"
        assert (await snapshot(handle)).status == "cancelled"

    row = await eventually(
        lambda: case_row(sessions, ref), lambda c: c is not None and c.status == "cancelled"
    )
    assert row is not None and row.closure_reason == "customer_cancelled: order withdrawn"
    seen = kinds(await events(sessions, ref))
    for kind in ("paused", "resumed", "case_cancelled"):
        assert kind in seen
    rows = await eventually(
        lambda: visits(sessions, ref),
        lambda rows: any(v.stage == "approval" and v.outcome for v in rows),
    )
    assert [v.outcome for v in rows if v.stage == "approval"] == ["cancelled"]
    assert len(await dead_letters(sessions, ref)) == 1  # only the write that held the NUL
