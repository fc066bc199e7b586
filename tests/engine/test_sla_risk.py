"""The predictive at-risk alert raises priority, and clears (priority back down) once the
stage's work catches up; a warning after an at-risk alert shows as warning."""

from __future__ import annotations

from datetime import timedelta

from schemas.engine_commands import CommandResult, CompleteTaskCmd, WaiveDocuments
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import profile, snapshot, start, wait_for


async def test_at_risk_then_cleared_when_work_catches_up(time_skipping_env, sessions):
    env, client = time_skipping_env, time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        _, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "client_onboarding",
            client_profile=profile(country="FR"),  # international: due diligence in compliance
            started=worker.started_cases,
        )
        await wait_for(handle, lambda s: "waive_documents" in s.allowed_actions)
        await handle.execute_update(
            "waive_documents", WaiveDocuments(actor="cm", note="seen"), result_type=CommandResult
        )
        state = await wait_for(handle, lambda s: "complete_task" in s.allowed_actions)
        assert state.stage == "compliance_review" and state.priority == "normal"

        # 60% of the 8h budget with 0 of 2 steps done (due diligence, decision): at risk
        await env.sleep(timedelta(hours=4, minutes=50))
        state = await wait_for(handle, lambda s: s.sla is not None and s.sla.state == "at_risk")
        assert state.priority == "high"

        await handle.execute_update(
            "complete_task",
            CompleteTaskCmd(
                actor="rita", role="compliance_reviewer", task_key="enhanced_due_diligence"
            ),
            result_type=CommandResult,
        )
        state = await wait_for(handle, lambda s: s.sla is not None and s.sla.state == "on_track")
        assert state.priority == "normal"  # 1 of 2 done is past the 40% the stage asks

        # 80%: the warning applies and shows, whatever happened before
        await env.sleep(timedelta(hours=1, minutes=40))
        state = await wait_for(handle, lambda s: s.sla is not None and s.sla.state == "warning")
        left = (await snapshot(handle)).sla.remaining_seconds
        assert left is not None and 0 < left < 2 * 3600
