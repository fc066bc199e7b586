"""Read-model activities are idempotent: retries and replays never duplicate anything."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from temporalio.testing import ActivityEnvironment

from activities.accounts import AccountActivities, format_account_number, luhn_check_digit
from activities.case_store import CaseStoreActivities
from schemas.case import StageInterval
from schemas.enums import CaseStatus, Stage
from schemas.projection import (
    AuditEvent,
    CasePatch,
    CaseSeed,
    Projection,
    ProvisionAccountInput,
)
from store.models import Account, Case, CaseEvent, StageIntervalRow
from tests.conftest import new_ref
from tests.factories import profile

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def opening(ref: str, version: int = 1) -> Projection:
    return Projection(
        case_ref=ref,
        version=version,
        at=T0,
        seed=CaseSeed(client=profile(), requested_by="test"),
        case=CasePatch(status=CaseStatus.OPEN, stage=Stage.ACKNOWLEDGEMENT),
        intervals=[StageInterval(seq=1, stage=Stage.ACKNOWLEDGEMENT, entered_at=T0)],
        events=[AuditEvent(key="case-opened", kind="case_opened")],
    )


async def test_projection_applied_twice_writes_once(sessions):
    store = CaseStoreActivities(sessions)
    env = ActivityEnvironment()
    ref = new_ref()
    await env.run(store.project, opening(ref))
    await env.run(store.project, opening(ref))
    async with sessions() as s:
        assert (
            await s.scalar(
                select(func.count())
                .select_from(StageIntervalRow)
                .where(StageIntervalRow.case_ref == ref)
            )
            == 1
        )
        assert (
            await s.scalar(
                select(func.count()).select_from(CaseEvent).where(CaseEvent.case_ref == ref)
            )
            == 1
        )
        case = await s.get(Case, ref)
        assert case is not None and case.status == "open" and case.client_name == "Ada Lovelace"


async def test_an_older_projection_never_overwrites_a_newer_one(sessions):
    store = CaseStoreActivities(sessions)
    env = ActivityEnvironment()
    ref = new_ref()
    await env.run(store.project, opening(ref))
    newer = Projection(
        case_ref=ref,
        version=3,
        at=T0 + timedelta(hours=1),
        case=CasePatch(stage=Stage.DOCUMENT_COLLECTION),
    )
    stale = Projection(
        case_ref=ref,
        version=2,
        at=T0 + timedelta(minutes=5),
        case=CasePatch(stage=Stage.ACKNOWLEDGEMENT),
    )
    await env.run(store.project, newer)
    await env.run(store.project, stale)
    async with sessions() as s:
        case = await s.get(Case, ref)
        assert case is not None
        assert case.stage == "document_collection"
        assert case.projection_version == 3


async def test_closing_an_interval_updates_the_same_row(sessions):
    store = CaseStoreActivities(sessions)
    env = ActivityEnvironment()
    ref = new_ref()
    await env.run(store.project, opening(ref))
    closed = StageInterval(
        seq=1,
        stage=Stage.ACKNOWLEDGEMENT,
        entered_at=T0,
        exited_at=T0 + timedelta(seconds=3),
        outcome="completed",
        active_seconds=3.0,
    )
    await env.run(store.project, Projection(case_ref=ref, version=2, at=T0, intervals=[closed]))
    async with sessions() as s:
        rows = (
            await s.scalars(select(StageIntervalRow).where(StageIntervalRow.case_ref == ref))
        ).all()
        assert len(rows) == 1
        assert (rows[0].outcome, rows[0].active_seconds) == ("completed", 3.0)


async def test_provisioning_twice_returns_the_same_single_account(sessions):
    store = CaseStoreActivities(sessions)
    accounts = AccountActivities(sessions)
    env = ActivityEnvironment()
    ref = new_ref()
    await env.run(store.project, opening(ref))
    first = await env.run(accounts.provision_account, ProvisionAccountInput(case_ref=ref, at=T0))
    again = await env.run(accounts.provision_account, ProvisionAccountInput(case_ref=ref, at=T0))
    assert first.created and not again.created
    assert first.account_number == again.account_number
    async with sessions() as s:
        assert (
            await s.scalar(select(func.count()).select_from(Account).where(Account.case_ref == ref))
            == 1
        )


async def test_concurrent_provisioning_of_many_cases_never_collides(sessions):
    store = CaseStoreActivities(sessions)
    accounts = AccountActivities(sessions)
    env = ActivityEnvironment()
    refs = [new_ref() for _ in range(20)]
    for ref in refs:
        await env.run(store.project, opening(ref))
    inputs = [ProvisionAccountInput(case_ref=ref, at=T0) for ref in refs for _ in range(2)]
    results = await asyncio.gather(*(env.run(accounts.provision_account, i) for i in inputs))
    by_case: dict[str, set[str]] = {}
    for r in results:
        by_case.setdefault(r.case_ref, set()).add(r.account_number)
    assert all(len(numbers) == 1 for numbers in by_case.values())
    assert len({n for numbers in by_case.values() for n in numbers}) == len(refs)


def test_account_numbers_carry_a_luhn_check_digit():
    assert luhn_check_digit("7992739871") == "3"  # the textbook example
    assert format_account_number(10_000_001) == "ACC0010000001" + luhn_check_digit("0010000001")
