"""engine_run_automation: every registered name, on the real screening and account activities."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.accounts import AccountActivities
from activities.automations import AutomationActivities, screening_attempt_key
from activities.compliance import ComplianceActivities
from core.settings import FATF_HIGH_RISK, FATF_INCREASED_MONITORING
from schemas.contracts import AUTOMATIONS, AutomationInput
from store.models import Account, ScreeningRow
from tests.engine_store.conftest import engine_case
from tests.factories import profile

AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def automations(sessions, fixture_screener) -> AutomationActivities:
    compliance = ComplianceActivities(
        sessions,
        fixture_screener,
        high_risk_countries=FATF_HIGH_RISK,
        increased_monitoring_countries=FATF_INCREASED_MONITORING,
    )
    return AutomationActivities(compliance, AccountActivities(sessions), sessions)


def automation(ref: str, action: str, **fields) -> AutomationInput:
    fields.setdefault("element_key", action)
    fields.setdefault("attempt_key", f"{ref}:{action}:1")
    return AutomationInput(case_ref=ref, action=action, at=AT, **fields)


async def run(automations: AutomationActivities, inp: AutomationInput):
    return await ActivityEnvironment().run(automations.run, inp)


def test_every_automation_a_case_type_may_name_has_a_handler(automations):
    assert automations.actions == set(AUTOMATIONS)


async def test_screening_a_clean_name_is_clear(sessions, automations):
    ref = await engine_case(sessions)

    result = await run(automations, automation(ref, "screening", client=profile()))

    assert result.outputs["decision"] == "clear"
    assert result.outputs["risk_level"] == "low"
    assert result.outputs["matched_name"] is None and result.outputs["list_version"]
    assert set(result.outputs) >= {
        "decision", "risk_level", "score", "matched_name", "list_entry_id", "list_version",
        "risk_factors",
    }  # fmt: skip
    assert result.flags == []
    assert result.summary.startswith("screening clear")


async def test_screening_a_listed_name_flags_the_case_and_runs_once(sessions, automations):
    ref = await engine_case(sessions)
    client = profile(name="Wladimir Putin", country="RU", date_of_birth="1952-10-07")
    inp = automation(ref, "screening", client=client)

    first = await run(automations, inp)
    second = await run(automations, inp)

    assert first.outputs["decision"] == "potential_match"
    assert first.outputs["list_entry_id"] == "ofac-sdn:100"
    assert first.flags == ["high_risk", "enhanced_due_diligence", "potential_sanctions_match"]
    assert second == first
    async with sessions() as s:
        count = await s.scalar(
            select(func.count()).select_from(ScreeningRow).where(ScreeningRow.case_ref == ref)
        )
    assert count == 1


async def test_screening_without_a_client_fails_for_good(sessions, automations):
    ref = await engine_case(sessions)
    with pytest.raises(ApplicationError) as raised:
        await run(automations, automation(ref, "screening"))
    assert raised.value.non_retryable and raised.value.type == "InvalidAutomationInput"


def test_long_attempt_keys_are_shortened_stably():
    long_key = "E-" + "x" * 200
    assert len(screening_attempt_key(long_key)) <= 80
    assert screening_attempt_key(long_key) == screening_attempt_key(long_key)
    assert screening_attempt_key("short") == "short"


async def test_provisioning_is_idempotent_and_close_compensates(sessions, automations):
    ref = await engine_case(sessions)

    first = await run(automations, automation(ref, "provision_account"))
    second = await run(automations, automation(ref, "provision_account"))

    assert first.outputs == second.outputs
    assert first.outputs["status"] == "open"
    assert first.outputs["account_number"].startswith("ACC")
    async with sessions() as s:
        accounts = list(await s.scalars(select(Account).where(Account.case_ref == ref)))
    assert len(accounts) == 1

    closed = await run(automations, automation(ref, "close_account", args={"reason": "rejected"}))
    assert closed.outputs == {"account_number": first.outputs["account_number"], "status": "closed"}
    async with sessions() as s:
        account = await s.scalar(select(Account).where(Account.case_ref == ref))
    assert account is not None and account.close_reason == "rejected"


async def test_closing_without_an_account_changes_nothing(sessions, automations):
    ref = await engine_case(sessions)
    result = await run(automations, automation(ref, "close_account"))
    assert result.outputs == {"account_number": None, "status": "not_provisioned"}


async def test_order_and_return_automations(automations):
    ref = "ORD-1"
    assert (await run(automations, automation(ref, "check_stock"))).outputs == {"available": True}
    big = automation(ref, "check_stock", args={"quantity": 1001})
    assert (await run(automations, big)).outputs == {"available": False}
    refund = automation(ref, "issue_refund", element_key="refund", args={"amount": "49.90"})
    assert (await run(automations, refund)).outputs == {"refund_id": "RF-ORD-1-refund",
                                                         "amount": "49.90"}  # fmt: skip
    assert (await run(automations, refund)).outputs["refund_id"] == "RF-ORD-1-refund"
    exchange = await run(automations, automation(ref, "create_exchange"))
    assert exchange.outputs == {"exchange_order_ref": "EX-ORD-1"}
    recorded = await run(automations, automation(ref, "record", args={"note": "hi", "n": 2}))
    assert recorded.outputs == {"note": "hi", "n": 2}


async def test_a_bad_quantity_fails_for_good(automations):
    with pytest.raises(ApplicationError) as raised:
        await run(automations, automation("ORD-2", "check_stock", args={"quantity": "lots"}))
    assert raised.value.non_retryable and raised.value.type == "InvalidAutomationInput"


async def test_an_unknown_automation_fails_for_good(automations):
    with pytest.raises(ApplicationError) as raised:
        await run(automations, automation("ORD-3", "launch_rocket"))
    assert raised.value.non_retryable
    assert raised.value.type == "UnknownAutomation"
