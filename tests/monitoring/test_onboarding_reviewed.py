"""A hit reviewed at onboarding is not alerted again by the first re-screen: onboarding keeps
each matched entry's content hash the way the re-screen does, and the re-screen skips a
potential match whose entry still reads the same. The activities run in process against
real Postgres (no Temporal: nothing is alerted, so no case is opened)."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.compliance import ComplianceActivities, subject_for
from activities.monitoring import MonitoringActivities
from core.settings import FATF_HIGH_RISK, FATF_INCREASED_MONITORING
from integrations.sanctions import ReloadingScreener
from integrations.sanctions.catalog import ListCatalog, ListFiles, load_lists
from schemas.compliance import ScreenClientInput
from schemas.monitoring import RescreenBatchInput
from store.db import SessionFactory
from store.models import ScreeningRow
from tests.factories import profile
from tests.monitoring.helpers import add_client, alerts_of, monitoring_settings
from tests.monitoring.lists import invented_people, write_sdn


async def _onboard(sessions: SessionFactory, ref: str, name: str, sdn: Path) -> ScreeningRow:
    """Screen the client as the onboarding case does, and return the screening row."""
    compliance = ComplianceActivities(
        sessions,
        ReloadingScreener(sdn=sdn, threshold=85),
        high_risk_countries=FATF_HIGH_RISK,
        increased_monitoring_countries=FATF_INCREASED_MONITORING,
    )
    out = await ActivityEnvironment().run(
        compliance.screen_client,
        ScreenClientInput(
            case_ref=ref, client=profile(name=name, email="client@example.com"), attempt_key="c-1"
        ),
    )
    assert out.decision == "potential_match"
    async with sessions() as s:
        return (await s.scalars(select(ScreeningRow).where(ScreeningRow.case_ref == ref))).one()


async def test_a_hit_reviewed_at_onboarding_is_not_alerted_while_its_entry_is_unchanged(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    person, _ = invented_people(2, seed=41)
    prefix = f"MONR{uuid.uuid4().hex[:6].upper()}"  # the batch below reads only this client
    ref = await add_client(sessions, person.client_name, prefix=prefix)
    sdn = write_sdn(tmp_path / "installed" / "sdn.csv", [person])

    row = await _onboard(sessions, ref, person.client_name, sdn)
    lists = load_lists(ListFiles(sdn=sdn))
    [hit] = [h for h in row.hits if h["entry_id"] == person.entry_id]
    assert hit["entry_hash"] == lists.hashes[person.entry_id]  # as the re-screen records it
    assert hit["score"] >= hit["threshold"]

    monitoring = MonitoringActivities(
        sessions,
        monitoring_settings(tmp_path / "installed"),
        None,
        catalog=ListCatalog(ListFiles(sdn=sdn), threshold=85),
    )
    result = await ActivityEnvironment().run(
        monitoring.rescreen_batch,
        RescreenBatchInput(version=lists.version, after_ref=prefix, limit=1, workflow_id="t"),
    )
    assert (result.clients, result.next_after_ref) == (1, ref)
    assert result.hits == 1  # still a potential match ...
    assert result.new_alerts == 0  # ... but the one the onboarding review saw
    assert await alerts_of(sessions, [ref]) == []

    # The entry amended since onboarding (a new alias) hashes differently: that one alerts.
    amended = write_sdn(tmp_path / "v2" / "sdn.csv", [person.changed(aka="Somebody Else")])
    changed = load_lists(ListFiles(sdn=amended)).hashes[person.entry_id]
    assert changed != hit["entry_hash"]
    reviewed = await monitoring._reviewed_at_onboarding([ref])
    assert reviewed == {(ref, person.entry_id, hit["entry_hash"])}
    assert (ref, person.entry_id, changed) not in reviewed


async def test_the_screening_subject_says_person_or_organisation() -> None:
    assert subject_for(profile(client_type="individual")).entity_type == "person"
    assert subject_for(profile(client_type="business")).entity_type == "entity"
    assert subject_for(profile(client_type="enterprise")).entity_type == "entity"
