"""The console shows what a sanctions decision rested on: each screening's list version,
threshold, matched entry and score breakdown, a client's monitoring alerts, and on an alert
case the match under review with a link to the client's case."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.compliance import ComplianceActivities
from core.settings import FATF_HIGH_RISK, FATF_INCREASED_MONITORING
from integrations.sanctions import ReloadingScreener
from schemas.compliance import ScreenClientInput
from store.db import SessionFactory
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import wait_for
from tests.factories import profile
from tests.monitoring.helpers import (
    add_client,
    alerts_of,
    load_list,
    monitoring_settings,
    rescreened,
)
from tests.monitoring.lists import invented_people, write_sdn


async def test_screening_audit_and_alert_pages(
    console_as: Any, sessions: SessionFactory, dev_server_env: Any, tmp_path: Path
) -> None:
    temporal = dev_server_env.client
    person = invented_people(1, seed=51)[0]
    who = {"date_of_birth": "1971-05-05", "country": "PT"}
    ref = await add_client(sessions, person.client_name, prefix="WEBSA", **who)
    listed = write_sdn(tmp_path / "list.csv", [person])
    # the onboarding screening (the screening automation's activity), kept for audit; the
    # entry has changed since (another programme), so the re-screen alerts on it again
    before = write_sdn(tmp_path / "before.csv", [dataclasses.replace(person, program="SDNTK")])
    compliance = ComplianceActivities(
        sessions,
        ReloadingScreener(sdn=before, threshold=85),
        high_risk_countries=FATF_HIGH_RISK,
        increased_monitoring_countries=FATF_INCREASED_MONITORING,
    )
    screened = await ActivityEnvironment().run(
        compliance.screen_client,
        ScreenClientInput(
            case_ref=ref,
            client=profile(name=person.client_name, email="client@example.com", **who),
            attempt_key="onboarding",
        ),
    )
    assert screened.decision == "potential_match"

    settings = monitoring_settings(tmp_path / "installed")
    async with engine_worker(temporal, sessions, settings) as worker:
        settings = settings.model_copy(update={"temporal_task_queue": worker.task_queue})
        loaded = await load_list(settings, sessions, temporal, listed)
        await rescreened(temporal, loaded.rescreen_workflow_id)
        [alert] = await alerts_of(sessions, [ref])
        handle = temporal.get_workflow_handle(f"sanctions-alert-{alert.alert_id}")
        worker.started_cases.append(handle)
        await wait_for(handle, lambda s: "decide" in s.allowed_actions)

        rita = await console_as("rita")
        page = await rita.client.get(f"/console/cases/{alert.alert_id}")
        assert page.status_code == 200, page.text
        html = page.text
        assert "Sanctions alert · version" in html
        section = html.split('data-testid="sanctions-alert"', 1)[1].split("</section>", 1)[0]
        assert f'href="/console/cases/{ref}" data-testid="client-case-link"' in section
        assert person.entry_id in section and alert.matched_name in section
        assert loaded.version in section and alert.entry_hash in section
        assert f"{alert.score:.1f} (threshold 85.0)" in section
        assert 'data-testid="alert-breakdown"' in section
        assert 'data-testid="decide-form"' in html  # clear or escalate, right there

        page = await rita.client.get(f"/console/cases/{ref}")
        assert page.status_code == 200, page.text
        html = page.text
        row = html.split('data-testid="screening-row"', 1)[1].split("</tr>", 1)[0]
        assert 'data-testid="screening-threshold">85.0<' in row
        assert person.entry_id in row and screened.list_version in row
        assert 'data-testid="screening-breakdown"' in html
        alerts = html.split('data-testid="sanctions-alerts"', 1)[1].split("</section>", 1)[0]
        assert f'href="/console/cases/{alert.alert_id}"' in alerts
        assert f"Sanctions alert {alert.alert_id} opened" in html  # on the timeline
