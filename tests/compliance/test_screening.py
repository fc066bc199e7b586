"""screen_client against the fixture lists and real Postgres: decisions, risk, idempotency."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.compliance import ComplianceActivities, subject_for
from core.settings import FATF_HIGH_RISK, FATF_INCREASED_MONITORING
from integrations.sanctions import ReloadingScreener
from schemas.compliance import RiskLevel, ScreenClientInput
from store.models import ScreeningRow
from tests.compliance.conftest import make_case
from tests.factories import profile


def activities(sessions, screener) -> ComplianceActivities:
    return ComplianceActivities(
        sessions,
        screener,
        high_risk_countries=FATF_HIGH_RISK,
        increased_monitoring_countries=FATF_INCREASED_MONITORING,
    )


async def rows_for(sessions, ref: str) -> list[ScreeningRow]:
    async with sessions() as s:
        return list(await s.scalars(select(ScreeningRow).where(ScreeningRow.case_ref == ref)))


async def test_listed_name_variant_is_a_potential_match_and_high_risk(sessions, fixture_screener):
    client = profile(name="Wladimir Putin", country="RU", date_of_birth="1952-10-07")
    ref = await make_case(sessions, client)
    heartbeats: list[tuple[object, ...]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: heartbeats.append(details)

    out = await env.run(
        activities(sessions, fixture_screener).screen_client,
        ScreenClientInput(case_ref=ref, client=client, attempt_key="compliance-1"),
    )

    assert out.decision == "potential_match"
    assert out.score >= 85
    assert out.list_entry_id == "ofac-sdn:100"
    assert out.matched_name and "PUTIN" in out.matched_name.upper()
    assert out.explanation
    assert out.risk_level is RiskLevel.HIGH and out.risk_score >= 65
    assert out.risk_factors[0].startswith("potential sanctions/PEP list match")
    assert out.screening_id.startswith("scr_")
    assert heartbeats, "the activity heart-beats while the matcher runs"

    [row] = await rows_for(sessions, ref)
    assert row.id == out.screening_id and row.attempt_key == "compliance-1"
    assert row.decision == "potential_match" and row.risk_level == "high"
    assert row.list_version == fixture_screener.list_version == out.list_version
    assert row.list_version.startswith("ofac-sdn@")
    assert row.hits[0]["entry_id"] == "ofac-sdn:100"
    # the audit trail: the entry, the score, how it came about and the threshold in force
    assert set(row.hits[0]) == {
        "list_name",
        "entry_id",
        "matched_name",
        "score",
        "explanation",
        "threshold",
        "breakdown",
        "entry_hash",  # the re-screen does not alert on this entry again while unchanged
    }
    assert row.hits[0]["entry_hash"]
    assert row.threshold == row.hits[0]["threshold"] == 85.0
    assert row.hits[0]["breakdown"] and all("points" in c for c in row.hits[0]["breakdown"])
    assert row.risk_factors == out.risk_factors


async def test_clean_name_is_clear_and_low_risk(sessions, fixture_screener):
    client = profile(name="Ada Lovelace", country="GB", date_of_birth="1985-12-10")
    ref = await make_case(sessions, client)
    out = await ActivityEnvironment().run(
        activities(sessions, fixture_screener).screen_client,
        ScreenClientInput(case_ref=ref, client=client, attempt_key="k1"),
    )
    assert out.decision == "clear"
    assert out.matched_name is None and out.list_entry_id is None
    assert out.risk_level is RiskLevel.LOW
    [row] = await rows_for(sessions, ref)
    assert row.decision == "clear" and row.hits == []


async def test_same_attempt_key_returns_the_stored_outcome(sessions, fixture_screener):
    client = profile(name="Rosa Fernandez", country="ES")
    ref = await make_case(sessions, client)
    acts = activities(sessions, fixture_screener)
    env = ActivityEnvironment()
    inp = ScreenClientInput(case_ref=ref, client=client, attempt_key="compliance-1")

    first = await env.run(acts.screen_client, inp)
    second = await env.run(acts.screen_client, inp)

    assert second == first
    assert len(await rows_for(sessions, ref)) == 1
    # A new attempt key (e.g. after a send-back) is a new screening.
    third = await env.run(
        acts.screen_client, inp.model_copy(update={"attempt_key": "compliance-2"})
    )
    assert third.screening_id != first.screening_id
    async with sessions() as s:
        count = await s.scalar(
            select(func.count()).select_from(ScreeningRow).where(ScreeningRow.case_ref == ref)
        )
    assert count == 2


async def test_fatf_high_risk_country_is_high_risk_even_when_clear(sessions, fixture_screener):
    client = profile(name="Maryam Ahmadi", country="IR")
    ref = await make_case(sessions, client)
    out = await ActivityEnvironment().run(
        activities(sessions, fixture_screener).screen_client,
        ScreenClientInput(case_ref=ref, client=client, attempt_key="k1"),
    )
    assert out.decision == "clear"
    assert out.risk_level is RiskLevel.HIGH
    assert "FATF high-risk country IR" in out.risk_factors


async def test_unloadable_list_is_a_retryable_error_never_clear(sessions, tmp_path: Path):
    client = profile(name="Ada Lovelace")
    ref = await make_case(sessions, client)
    broken = ReloadingScreener(sdn=tmp_path / "missing-sdn.csv")
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(
            activities(sessions, broken).screen_client,
            ScreenClientInput(case_ref=ref, client=client, attempt_key="k1"),
        )
    assert info.value.type == "ScreeningUnavailable"
    assert not info.value.non_retryable
    assert await rows_for(sessions, ref) == []


async def test_empty_list_is_an_error_not_clear(sessions, tmp_path: Path):
    (tmp_path / "sdn.csv").write_text("")
    client = profile(name="Ada Lovelace")
    ref = await make_case(sessions, client)
    with pytest.raises(ApplicationError, match="empty"):
        await ActivityEnvironment().run(
            activities(sessions, ReloadingScreener(sdn=tmp_path / "sdn.csv")).screen_client,
            ScreenClientInput(case_ref=ref, client=client, attempt_key="k1"),
        )
    assert await rows_for(sessions, ref) == []


def test_subject_uses_name_dob_and_country():
    subject = subject_for(profile(name="Ada Lovelace", date_of_birth="1985-12-10", country="GB"))
    assert (subject.name, str(subject.dob), subject.country) == ("Ada Lovelace", "1985-12-10", "GB")
    # Shape-valid but impossible date: screen on the name rather than fail.
    assert subject_for(profile(date_of_birth="1985-02-30")).dob is None
