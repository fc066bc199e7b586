"""Stage SLAs, escalations, pauses and approvals on the time-skipping server.

Time only moves when a test sleeps (``env.sleep``), so "not before" checks are exact.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError

from schemas.commands import (
    CancelCase,
    CompleteTask,
    ComplianceDecision,
    PauseRequest,
    ResumeRequest,
    SendBack,
)
from schemas.enums import CaseStatus, Decision, SlaState, Stage
from store.models import Account, Case, CasePauseRow, StageIntervalRow
from tests.conftest import running_worker
from tests.factories import (
    assert_no_event,
    audit_kinds,
    close_case,
    start_case,
    wait_for_event,
    wait_for_state,
    waived_documents,
)
from workflows.onboarding import OnboardingCaseWorkflow as Wf

MIN = timedelta(minutes=1)


def hm(hours: int, minutes: int = 0) -> timedelta:
    return timedelta(hours=hours, minutes=minutes)


async def case_row(sessions, ref):
    async with sessions() as s:
        return await s.get(Case, ref, populate_existing=True)


async def intervals(sessions, ref):
    async with sessions() as s:
        return (
            await s.scalars(
                select(StageIntervalRow)
                .where(StageIntervalRow.case_ref == ref)
                .order_by(StageIntervalRow.seq)
            )
        ).all()


async def to_compliance(handle):
    await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
    await handle.signal(Wf.documents_received, waived_documents())
    return await wait_for_state(handle, lambda s: s.stage == Stage.COMPLIANCE_REVIEW)


async def test_document_collection_warns_at_19h12_breaches_at_24h_escalates_at_28h(
    time_skipping_env, sessions
):
    env = time_skipping_env
    async with running_worker(env.client, sessions) as worker:
        ref, handle = await start_case(env, worker)
        await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)

        await env.sleep(hm(19, 11))
        await assert_no_event(sessions, ref, "sla_warning")
        await env.sleep(2 * MIN)
        await wait_for_event(sessions, ref, "sla_warning")
        await assert_no_event(sessions, ref, "sla_breached")

        await env.sleep(hm(4, 46))  # 23h59m
        assert (await handle.query(Wf.state)).sla.state != SlaState.BREACHED
        await assert_no_event(sessions, ref, "sla_breached")
        await env.sleep(2 * MIN)  # 24h01m
        await wait_for_event(sessions, ref, "sla_breached")
        await wait_for_event(sessions, ref, "sla_escalated")
        row = await case_row(sessions, ref)
        assert (row.sla_state, row.priority) == ("breached", "high")

        await env.sleep(hm(3, 58))  # 27h59m: level 2 is at breach + 4h
        state = await handle.query(Wf.state)
        assert state.sla.escalation_level == 1
        await env.sleep(2 * MIN)
        state = await wait_for_state(handle, lambda s: s.sla.escalation_level == 2)
        assert state.priority == "urgent"
        assert state.sla.state == SlaState.BREACHED
        assert (await case_row(sessions, ref)).priority == "urgent"
        assert (await audit_kinds(sessions, ref)).count("sla_escalated") == 2

        await handle.signal(Wf.documents_received, waived_documents())
        await wait_for_state(handle, lambda s: s.stage != Stage.DOCUMENT_COLLECTION)
        docs = (await intervals(sessions, ref))[1]
        assert docs.stage == "document_collection"
        assert docs.sla_outcome == "breached"
        assert docs.escalations == 3  # at-risk, level 1, level 2
        assert docs.active_seconds == pytest.approx(hm(28, 1).total_seconds(), abs=60)
        await close_case(handle)


async def test_pause_stops_the_clock_and_breach_comes_after_24h_of_active_time(
    time_skipping_env, sessions
):
    env = time_skipping_env
    async with running_worker(env.client, sessions) as worker:
        ref, handle = await start_case(env, worker)
        await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
        await env.sleep(hm(10))
        await handle.signal(Wf.pause, PauseRequest(actor="maria", reason="client on holiday"))
        paused = await wait_for_state(handle, lambda s: s.status == CaseStatus.PAUSED)
        assert paused.sla.state == SlaState.PAUSED and paused.paused_by == "maria"

        await env.sleep(hm(30))  # 40h of wall time; only 10h active
        assert (await handle.query(Wf.state)).sla.state == SlaState.PAUSED
        await assert_no_event(sessions, ref, "sla_warning")
        row = await case_row(sessions, ref)
        assert (row.status, row.sla_state, row.ever_paused) == ("paused", "paused", True)

        await handle.signal(Wf.resume, ResumeRequest(actor="maria", reason="client back"))
        resumed = await wait_for_state(handle, lambda s: s.status != CaseStatus.PAUSED)
        assert resumed.sla.remaining_seconds == pytest.approx(hm(14).total_seconds(), abs=60)

        await env.sleep(hm(13, 58))  # 53h58m wall, 23h58m active
        assert (await handle.query(Wf.state)).sla.state != SlaState.BREACHED
        await assert_no_event(sessions, ref, "sla_breached")
        await env.sleep(3 * MIN)
        await wait_for_event(sessions, ref, "sla_breached")

        async with sessions() as s:
            pause = await s.scalar(select(CasePauseRow).where(CasePauseRow.case_ref == ref))
        assert pause is not None
        assert (pause.paused_by, pause.reason, pause.resumed_by) == (
            "maria",
            "client on holiday",
            "maria",
        )
        assert pause.resumed_at - pause.paused_at == pytest.approx(hm(30), abs=MIN)
        assert pause.stage == "document_collection"

        await handle.signal(Wf.documents_received, waived_documents())
        await wait_for_state(handle, lambda s: s.stage != Stage.DOCUMENT_COLLECTION)
        docs = (await intervals(sessions, ref))[1]
        assert docs.paused_seconds == pytest.approx(hm(30).total_seconds(), abs=60)
        await close_case(handle)


async def test_while_paused_the_case_takes_no_decisions(
    time_skipping_env, sessions, manual_review_settings
):
    env = time_skipping_env
    async with running_worker(env.client, sessions, manual_review_settings) as worker:
        _, handle = await start_case(env, worker)
        await to_compliance(handle)
        await handle.signal(Wf.pause, PauseRequest(actor="maria", reason="check"))
        await wait_for_state(handle, lambda s: s.status == CaseStatus.PAUSED)
        with pytest.raises(WorkflowUpdateFailedError, match="failed"):
            await handle.execute_update(
                Wf.decide_compliance, ComplianceDecision(decision=Decision.APPROVE, reviewer="r")
            )
        await handle.signal(Wf.resume, ResumeRequest(actor="maria"))
        await wait_for_state(handle, lambda s: s.status == CaseStatus.OPEN)
        await handle.execute_update(
            Wf.decide_compliance, ComplianceDecision(decision=Decision.APPROVE, reviewer="r")
        )
        await wait_for_state(handle, lambda s: s.stage == Stage.FINAL_REVIEW)
        await close_case(handle)


async def test_predictive_alert_fires_when_tasks_lag(time_skipping_env, sessions):
    env = time_skipping_env
    async with running_worker(env.client, sessions) as worker:
        ref, handle = await start_case(env, worker, country="US")  # international: EDD task
        await to_compliance(handle)
        await env.sleep(hm(4, 47))  # 60% of 8h is 4h48m
        assert (await handle.query(Wf.state)).sla.state == SlaState.ON_TRACK
        await assert_no_event(sessions, ref, "sla_at_risk")
        await env.sleep(2 * MIN)
        await wait_for_event(sessions, ref, "sla_at_risk")
        state = await handle.query(Wf.state)
        assert state.sla.state == SlaState.AT_RISK
        assert (await case_row(sessions, ref)).sla_state == "at_risk"
        await close_case(handle)


async def test_predictive_alert_stays_quiet_when_tasks_keep_pace(time_skipping_env, sessions):
    env = time_skipping_env
    async with running_worker(env.client, sessions) as worker:
        ref, handle = await start_case(env, worker, country="US")
        await to_compliance(handle)
        await env.sleep(hm(2))
        await handle.execute_update(
            Wf.complete_task, CompleteTask(task_key="enhanced_due_diligence", actor="sam")
        )
        await env.sleep(hm(3))  # past 4h48m
        await assert_no_event(sessions, ref, "sla_at_risk")
        state = await handle.query(Wf.state)
        assert state.sla.state == SlaState.ON_TRACK
        await close_case(handle)


async def test_high_risk_case_needs_two_different_reviewers(time_skipping_env, sessions):
    env = time_skipping_env
    async with running_worker(env.client, sessions) as worker:
        _, handle = await start_case(env, worker, country="IR")
        state = await to_compliance(handle)
        assert state.approvals_required == 2

        approve_rita = ComplianceDecision(decision=Decision.APPROVE, reviewer="rita")
        with pytest.raises(WorkflowUpdateFailedError) as early:
            await handle.execute_update(Wf.decide_compliance, approve_rita)
        assert "enhanced_due_diligence" in str(early.value.cause)
        for key in ("enhanced_due_diligence", "source_of_funds"):
            await handle.execute_update(Wf.complete_task, CompleteTask(task_key=key, actor="sam"))

        first = await handle.execute_update(Wf.decide_compliance, approve_rita)
        assert "1 of 2" in first.message
        with pytest.raises(WorkflowUpdateFailedError) as twice:
            await handle.execute_update(
                Wf.decide_compliance, ComplianceDecision(decision=Decision.APPROVE, reviewer="RITA")
            )
        assert "different reviewer" in str(twice.value.cause)
        state = await handle.query(Wf.state)
        assert state.stage == Stage.COMPLIANCE_REVIEW
        assert state.awaiting == "compliance decision (1 of 2 approvals)"

        await handle.execute_update(
            Wf.decide_compliance, ComplianceDecision(decision=Decision.APPROVE, reviewer="omar")
        )
        state = await wait_for_state(handle, lambda s: s.stage == Stage.FINAL_REVIEW)
        assert [a.reviewer for a in state.approvals] == ["rita", "omar"]
        await close_case(handle)


async def test_standard_case_needs_one_approval(
    time_skipping_env, sessions, manual_review_settings
):
    env = time_skipping_env
    async with running_worker(env.client, sessions, manual_review_settings) as worker:
        _, handle = await start_case(env, worker)
        state = await to_compliance(handle)
        assert state.approvals_required == 1
        await close_case(handle)


async def test_send_back_returns_to_documents_with_a_fresh_sla(
    time_skipping_env, sessions, manual_review_settings
):
    env = time_skipping_env
    async with running_worker(env.client, sessions, manual_review_settings) as worker:
        ref, handle = await start_case(env, worker)
        await to_compliance(handle)
        await env.sleep(hm(3))
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(
                Wf.send_back, SendBack(to_stage=Stage.FINAL_REVIEW, actor="rita", reason="x")
            )
        await handle.execute_update(
            Wf.send_back,
            SendBack(to_stage=Stage.DOCUMENT_COLLECTION, actor="rita", reason="passport expired"),
        )
        state = await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
        assert state.awaiting == "client documents"  # old documents no longer count
        assert state.sla.remaining_seconds == pytest.approx(hm(24).total_seconds(), abs=60)
        assert state.status == CaseStatus.WAITING_ON_CLIENT

        rows = await intervals(sessions, ref)
        assert [(r.stage, r.outcome) for r in rows] == [
            ("acknowledgement", "completed"),
            ("document_collection", "completed"),
            ("compliance_review", "sent_back"),
            ("document_collection", None),
        ]
        assert "sent_back" in await audit_kinds(sessions, ref)
        await env.sleep(hm(19, 13))  # warning counts from the new visit
        await wait_for_event(sessions, ref, "sla_warning")
        await close_case(handle)


async def test_cancel_after_provisioning_closes_the_account(
    time_skipping_env, sessions, manual_review_settings
):
    env = time_skipping_env
    async with running_worker(env.client, sessions, manual_review_settings) as worker:
        ref, handle = await start_case(env, worker)
        await to_compliance(handle)
        await handle.execute_update(
            Wf.decide_compliance, ComplianceDecision(decision=Decision.APPROVE, reviewer="rita")
        )
        await wait_for_state(handle, lambda s: s.stage == Stage.FINAL_REVIEW)
        await handle.execute_update(
            Wf.cancel,
            CancelCase(closure_code="client_withdrew", actor="maria", reason="chose a competitor"),
        )
        outcome = await handle.result()
    assert outcome.status == CaseStatus.CANCELLED
    row = await case_row(sessions, ref)
    assert row.status == "cancelled"
    assert row.closure_reason == "client_withdrew: chose a competitor"
    async with sessions() as s:
        account = await s.scalar(select(Account).where(Account.case_ref == ref))
    assert account is not None and account.status == "closed"
    assert "cancelled" in (account.close_reason or "")
    assert (await intervals(sessions, ref))[-1].outcome == "cancelled"


async def test_rejection_after_provisioning_deprovisions(
    time_skipping_env, sessions, manual_review_settings
):
    env = time_skipping_env
    async with running_worker(env.client, sessions, manual_review_settings) as worker:
        ref, handle = await start_case(env, worker)
        await to_compliance(handle)
        await handle.execute_update(
            Wf.decide_compliance, ComplianceDecision(decision=Decision.APPROVE, reviewer="rita")
        )
        state = await wait_for_state(handle, lambda s: s.stage == Stage.FINAL_REVIEW)
        assert state.account_number is not None
        await handle.execute_update(
            Wf.send_back,
            SendBack(to_stage=Stage.COMPLIANCE_REVIEW, actor="fred", reason="new adverse media"),
        )
        await wait_for_state(handle, lambda s: s.stage == Stage.COMPLIANCE_REVIEW)
        await handle.execute_update(
            Wf.decide_compliance,
            ComplianceDecision(
                decision=Decision.REJECT, reviewer="rita", reason="adverse media confirmed"
            ),
        )
        outcome = await handle.result()
    assert outcome.status == CaseStatus.REJECTED
    async with sessions() as s:
        account = await s.scalar(select(Account).where(Account.case_ref == ref))
    assert account is not None and account.status == "closed"
    assert (await case_row(sessions, ref)).closure_reason == "adverse media confirmed"


async def test_cancel_while_paused_closes_the_pause_too(time_skipping_env, sessions):
    env = time_skipping_env
    async with running_worker(env.client, sessions) as worker:
        ref, handle = await start_case(env, worker)
        await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
        await handle.signal(Wf.pause, PauseRequest(actor="maria", reason="fraud check"))
        await wait_for_state(handle, lambda s: s.status == CaseStatus.PAUSED)
        await handle.execute_update(
            Wf.cancel, CancelCase(closure_code="fraud_suspected", actor="maria")
        )
        outcome = await handle.result()
    assert outcome.status == CaseStatus.CANCELLED
    async with sessions() as s:
        pause = await s.scalar(select(CasePauseRow).where(CasePauseRow.case_ref == ref))
    assert pause is not None and pause.resumed_at is not None
    row = await case_row(sessions, ref)
    assert (row.status, row.closure_reason) == ("cancelled", "fraud_suspected")
