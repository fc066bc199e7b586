"""A case runs every planned stage on the time-skipping server, with real Postgres behind it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.accounts import luhn_check_digit
from schemas.commands import ComplianceDecision, FinalSignOff
from schemas.enums import CaseStatus, Decision, Stage
from store.models import Account, Case, CaseEvent, StageIntervalRow
from tests.conftest import running_worker
from tests.factories import close_case, start_case, wait_for_state, waived_documents
from workflows.onboarding import OnboardingCaseWorkflow

STANDARD_STAGES = [
    "acknowledgement",
    "document_collection",
    "compliance_review",
    "account_setup",
    "final_review",
    "welcome",
]


async def test_case_completes_through_every_stage_and_is_projected(time_skipping_env, sessions):
    async with running_worker(time_skipping_env.client, sessions) as worker:
        ref, handle = await start_case(time_skipping_env, worker)
        state = await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
        assert state.awaiting == "client documents"
        assert state.stages_planned == [Stage(s) for s in STANDARD_STAGES]

        await handle.signal(OnboardingCaseWorkflow.documents_received, waived_documents())
        # screening is clear and risk low: compliance approves itself (straight-through)
        state = await wait_for_state(handle, lambda s: s.stage == Stage.FINAL_REVIEW)
        assert [(a.reviewer, a.decision) for a in state.approvals] == [("system", "approve")]
        assert state.account_number is not None
        await handle.execute_update(OnboardingCaseWorkflow.sign_off, FinalSignOff(reviewer="fred"))
        outcome = await handle.result()

    assert outcome.status == CaseStatus.COMPLETED
    async with sessions() as s:
        case = await s.get(Case, ref)
        assert case is not None
        assert (case.status, case.stage) == ("completed", "welcome")
        assert case.closed_at is not None
        intervals = (
            await s.scalars(
                select(StageIntervalRow)
                .where(StageIntervalRow.case_ref == ref)
                .order_by(StageIntervalRow.seq)
            )
        ).all()
        assert [i.stage for i in intervals] == STANDARD_STAGES
        assert all(i.outcome == "completed" and i.exited_at is not None for i in intervals)
        assert [i.seq for i in intervals] == list(range(1, 7))
        account = await s.scalar(select(Account).where(Account.case_ref == ref))
        assert account is not None and account.status == "open"
        assert re.fullmatch(r"ACC\d{11}", account.account_number)
        body = account.account_number[3:-1]
        assert luhn_check_digit(body) == account.account_number[-1]
        events = {
            (e.kind, e.actor)
            for e in (await s.scalars(select(CaseEvent).where(CaseEvent.case_ref == ref))).all()
        }
        assert ("screening_completed", "system") in events
        assert ("compliance_auto_approved", "system") in events
        assert ("final_sign_off", "fred") in events
        assert ("case_completed", "system") in events


async def test_command_for_another_stage_is_refused_and_leaves_no_trace(
    time_skipping_env, sessions
):
    async with running_worker(time_skipping_env.client, sessions) as worker:
        _, handle = await start_case(time_skipping_env, worker)
        await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(
                OnboardingCaseWorkflow.decide_compliance,
                ComplianceDecision(decision=Decision.APPROVE, reviewer="rita"),
            )
        cause = err.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "WrongState"
        assert "document_collection" in cause.message
        state = await handle.query(OnboardingCaseWorkflow.state)
        assert state.stage == Stage.DOCUMENT_COLLECTION
        history = await handle.fetch_history()
        assert not [
            e
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        ]
        await close_case(handle)


async def test_rejection_in_compliance_closes_case_without_an_account(
    time_skipping_env, sessions, manual_review_settings
):
    async with running_worker(time_skipping_env.client, sessions, manual_review_settings) as worker:
        ref, handle = await start_case(time_skipping_env, worker)
        await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
        await handle.signal(OnboardingCaseWorkflow.documents_received, waived_documents())
        await wait_for_state(handle, lambda s: s.stage == Stage.COMPLIANCE_REVIEW)
        await handle.execute_update(
            OnboardingCaseWorkflow.decide_compliance,
            ComplianceDecision(decision=Decision.REJECT, reviewer="rita", reason="adverse media"),
        )
        outcome = await handle.result()
    assert outcome.status == CaseStatus.REJECTED
    assert outcome.closure_reason == "adverse media"
    async with sessions() as s:
        case = await s.get(Case, ref)
        assert case is not None and case.status == "rejected"
        assert case.closure_reason == "adverse media"
        last = await s.scalar(
            select(StageIntervalRow)
            .where(StageIntervalRow.case_ref == ref)
            .order_by(StageIntervalRow.seq.desc())
            .limit(1)
        )
        assert last is not None and (last.stage, last.outcome) == ("compliance_review", "rejected")
        assert await s.scalar(select(Account).where(Account.case_ref == ref)) is None
