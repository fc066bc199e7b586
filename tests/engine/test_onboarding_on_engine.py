"""Client onboarding on the engine: the standard path, end to end on the time-skipping server."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from schemas.engine_commands import CommandResult, Decide, WaiveDocuments
from store.models import Case, StageIntervalRow
from tests.conftest import running_worker
from tests.engine.helpers import start, wait_for


async def test_standard_case_resolves_then_closes(time_skipping_env, sessions):
    client = time_skipping_env.client
    async with running_worker(client, sessions) as worker:
        ref, handle = await start(
            client, sessions, worker.task_queue, "client_onboarding", started=worker.started_cases
        )
        state = await wait_for(handle, lambda s: s.stage == "document_collection")
        assert state.status == "waiting_on_client"
        assert state.awaiting == "client documents"
        await handle.execute_update(
            "waive_documents",
            WaiveDocuments(actor="cm1", role="case_manager", note="originals seen at branch"),
            result_type=CommandResult,
        )
        state = await wait_for(handle, lambda s: s.stage == "final_review")
        assert state.account_number is not None
        assert [v.actor for v in state.approvals] == []
        result = await handle.execute_update(
            "decide",
            Decide(actor="fred", role="case_manager", decision="approve"),
            result_type=CommandResult,
        )
        assert "approved" in result.message
        state = await wait_for(handle, lambda s: s.status == "resolved")
        assert state.resolution == "completed"
        outcome = await handle.result()
    assert outcome["status"] == "closed"
    async with sessions() as s:
        case = await s.get(Case, ref)
        assert case is not None and case.status == "closed"
        assert case.resolved_at is not None and case.closed_at is not None
        assert case.closed_at - case.resolved_at >= timedelta(days=7)  # the lifecycle's wait
        stages = (
            await s.scalars(
                select(StageIntervalRow.stage)
                .where(StageIntervalRow.case_ref == ref)
                .order_by(StageIntervalRow.seq)
            )
        ).all()
    assert stages == [
        "acknowledgement",
        "document_collection",
        "compliance_review",
        "account_setup",
        "final_review",
        "welcome",
    ]
