"""Sanctions monitoring end to end on a real Temporal dev server and Postgres: a list update
re-screens every client, a new hit opens one alert case, a cleared alert stays cleared until
its entry changes, and an escalation puts the client's case on hold."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from schemas.engine_commands import CommandResult, Decide
from schemas.monitoring import RESCREEN_WORKFLOW, RescreenInput, RescreenTotals
from store.db import SessionFactory
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import profile, start, wait_for
from tests.monitoring.helpers import (
    add_client,
    alert_cases_of,
    alerts_of,
    events_of,
    load_list,
    monitoring_settings,
    rescreened,
    version_row,
)
from tests.monitoring.lists import invented_people, write_sdn


async def _decide(handle: Any, **fields: Any) -> CommandResult:
    cmd = Decide(actor="rita", role="compliance_reviewer", **fields)
    result: CommandResult = await handle.execute_update("decide", cmd, result_type=CommandResult)
    return result


async def test_a_list_update_naming_a_client_opens_exactly_one_alert_case(
    dev_server_env: Any, sessions: SessionFactory, tmp_path: Path
) -> None:
    temporal = dev_server_env.client
    target, bystander, gone = invented_people(3, seed=11)
    target_ref = await add_client(sessions, target.client_name, prefix="MONA")
    open_ref = await add_client(
        sessions, bystander.client_name, prefix="MONA", status="waiting_on_client", resolution=None
    )
    cancelled_ref = await add_client(
        sessions, gone.client_name, prefix="MONA", status="cancelled", resolution=None
    )
    refs = [target_ref, open_ref, cancelled_ref]
    settings = monitoring_settings(tmp_path / "installed")
    async with engine_worker(temporal, sessions, settings) as worker:
        settings = settings.model_copy(update={"temporal_task_queue": worker.task_queue})
        # the lists as they were when the clients were onboarded: nobody on them
        before = await load_list(settings, sessions, temporal, write_sdn(tmp_path / "v1.csv", []))
        assert before.rescreen_started
        await rescreened(temporal, before.rescreen_workflow_id)
        assert await alerts_of(sessions, refs) == []

        # the update designates the target (and someone whose onboarding was cancelled)
        update = write_sdn(tmp_path / "v2" / "sdn.csv", [target, gone])
        loaded = await load_list(settings, sessions, temporal, update, source="OFAC 2026-12-02")
        assert loaded.new_version and loaded.rescreen_started
        assert loaded.rescreen_workflow_id == f"rescreen-{loaded.version}"
        totals = await rescreened(temporal, loaded.rescreen_workflow_id)
        assert totals.new_alerts == 1 and totals.cases_opened == 1
        assert totals.list_versions == [loaded.version]

        [alert] = await alerts_of(sessions, refs)
        assert (alert.client_case_ref, alert.entry_id) == (target_ref, target.entry_id)
        assert alert.status == "open" and alert.list_version == loaded.version
        assert alert.score >= alert.threshold == settings.sanctions_threshold
        assert alert.breakdown and alert.entry_hash
        [case] = await alert_cases_of(sessions, refs)
        assert case.ref == alert.alert_case_ref == alert.alert_id
        assert case.data["client_case_ref"] == target_ref
        assert case.data["matched_name"] == alert.matched_name
        handle = temporal.get_workflow_handle(case.workflow_id)
        worker.started_cases.append(handle)
        state = await wait_for(handle, lambda s: "decide" in s.allowed_actions)
        assert state.case_type == "sanctions_alert" and state.stage == "review"
        [opened] = await events_of(sessions, target_ref, "sanctions_alert_opened")
        assert opened.detail["alert_ref"] == alert.alert_id
        version = await version_row(sessions, loaded.version)
        assert version is not None and version.status == "rescreened"
        assert version.source == "OFAC 2026-12-02" and version.entry_count == 4
        assert version.totals["new_alerts"] == 1

        # loading the same version again starts nothing new ...
        again = await load_list(settings, sessions, temporal, update)
        assert (again.version, again.new_version, again.rescreen_started) == (
            loaded.version,
            False,
            False,
        )
        assert again.installed == []
        # ... and a second run over the same version opens nothing
        rerun = await temporal.execute_workflow(
            RESCREEN_WORKFLOW,
            RescreenInput(version=loaded.version, batch_size=2, batches_per_run=2),
            id=f"rescreen-again-{uuid.uuid4().hex[:8]}",
            task_queue=worker.task_queue,
            result_type=RescreenTotals,
        )
        assert rerun.new_alerts == 0 and rerun.hits >= 1
        assert rerun.batches >= 2  # small batches, continued as new along the way
        assert len(await alerts_of(sessions, refs)) == 1
        assert len(await alert_cases_of(sessions, refs)) == 1
        assert len(await events_of(sessions, target_ref, "sanctions_alert_opened")) == 1


async def test_a_cleared_alert_stays_cleared_until_its_entry_changes(
    dev_server_env: Any, sessions: SessionFactory, tmp_path: Path
) -> None:
    temporal = dev_server_env.client
    person, other = invented_people(2, seed=12)
    ref = await add_client(sessions, person.client_name, prefix="MONB")
    settings = monitoring_settings(tmp_path / "installed")
    async with engine_worker(temporal, sessions, settings) as worker:
        settings = settings.model_copy(update={"temporal_task_queue": worker.task_queue})
        first = await load_list(
            settings, sessions, temporal, write_sdn(tmp_path / "1.csv", [person])
        )
        await rescreened(temporal, first.rescreen_workflow_id)
        [alert] = await alerts_of(sessions, [ref])
        handle = temporal.get_workflow_handle(f"sanctions-alert-{alert.alert_id}")
        worker.started_cases.append(handle)
        await wait_for(handle, lambda s: "decide" in s.allowed_actions)

        # clearing needs its reason
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await _decide(handle, decision="approve")
        assert isinstance(refused.value.cause, ApplicationError)
        assert "needs a note" in str(refused.value.cause)
        await _decide(handle, decision="approve", note="different person: born 1990 in Leeds")
        state = await wait_for(handle, lambda s: s.status == "resolved")
        assert state.fields["alert_outcome"]["status"] == "cleared"
        assert {e.key: e.status for e in state.elements}["escalate"] == "not_applicable"
        [cleared] = await alerts_of(sessions, [ref])
        assert (cleared.status, cleared.decided_by) == ("cleared", "rita")
        assert cleared.reason == "different person: born 1990 in Leeds"
        assert cleared.decided_at is not None
        [event] = await events_of(sessions, ref, "sanctions_alert_cleared")
        assert event.actor == "rita" and event.detail["alert_ref"] == alert.alert_id

        # the list is republished with another designation: the same entry, unchanged
        second = await load_list(
            settings, sessions, temporal, write_sdn(tmp_path / "2.csv", [person, other])
        )
        assert second.version != first.version and second.rescreen_started
        totals = await rescreened(temporal, second.rescreen_workflow_id)
        assert totals.new_alerts == 0
        assert [a.alert_id for a in await alerts_of(sessions, [ref])] == [alert.alert_id]

        # the entry itself changes (a new alias): that is news, and alerts again
        changed = person.changed(aka="THE ACCOUNTANT", program="SDGT] [RUSSIA-EO14024")
        third = await load_list(
            settings, sessions, temporal, write_sdn(tmp_path / "3.csv", [changed, other])
        )
        totals = await rescreened(temporal, third.rescreen_workflow_id)
        assert totals.new_alerts == 1
        first_alert, fresh = await alerts_of(sessions, [ref])
        assert first_alert.alert_id == alert.alert_id and first_alert.status == "cleared"
        assert fresh.entry_id == alert.entry_id and fresh.entry_hash != alert.entry_hash
        assert fresh.status == "open" and fresh.list_version == third.version
        cases = await alert_cases_of(sessions, [ref])
        assert sorted(c.ref for c in cases) == sorted([alert.alert_id, fresh.alert_id])
        fresh_handle = temporal.get_workflow_handle(f"sanctions-alert-{fresh.alert_id}")
        worker.started_cases.append(fresh_handle)
        await wait_for(fresh_handle, lambda s: "decide" in s.allowed_actions)


async def test_an_escalation_pauses_the_open_client_case_and_records_a_closed_one(
    dev_server_env: Any, sessions: SessionFactory, tmp_path: Path
) -> None:
    temporal = dev_server_env.client
    onboarding, former = invented_people(2, seed=13)
    former_ref = await add_client(sessions, former.client_name, prefix="MONC", status="closed")
    settings = monitoring_settings(tmp_path / "installed")
    async with engine_worker(temporal, sessions, settings) as worker:
        settings = settings.model_copy(update={"temporal_task_queue": worker.task_queue})
        open_ref, client_case = await start(
            temporal,
            sessions,
            worker.task_queue,
            "client_onboarding",
            # born in the year the designation gives, of its nationality
            client_profile=profile(
                name=onboarding.client_name, date_of_birth="1971-03-02", country="PT"
            ),
            started=worker.started_cases,
        )
        await wait_for(client_case, lambda s: s.stage == "document_collection")

        loaded = await load_list(
            settings, sessions, temporal, write_sdn(tmp_path / "list.csv", [onboarding, former])
        )
        await rescreened(temporal, loaded.rescreen_workflow_id)
        [alert] = await alerts_of(sessions, [open_ref])
        [old_alert] = await alerts_of(sessions, [former_ref])
        alert_case = temporal.get_workflow_handle(f"sanctions-alert-{alert.alert_id}")
        old_case = temporal.get_workflow_handle(f"sanctions-alert-{old_alert.alert_id}")
        worker.started_cases += [alert_case, old_case]

        for handle in (alert_case, old_case):
            await wait_for(handle, lambda s: "decide" in s.allowed_actions)
            await _decide(
                handle,
                decision="reject",
                reason_code="true_match",
                note="same passport number as the designation",
            )

        # the onboarding that is still going is put on hold, naming the alert
        paused = await wait_for(client_case, lambda s: s.status == "paused")
        assert alert.alert_id in paused.pauses[-1].reason
        assert "same passport number" in paused.pauses[-1].reason
        state = await wait_for(alert_case, lambda s: s.status == "resolved")
        assert state.fields["escalation"]["client_case_paused"] is True
        assert {e.key: e.status for e in state.elements}["tell_compliance_owner"] == (
            "not_applicable"
        )
        [escalated] = await alerts_of(sessions, [open_ref])
        assert (escalated.status, escalated.reason_code) == ("escalated", "true_match")
        [recorded] = await events_of(sessions, open_ref, "sanctions_alert_escalation")
        assert recorded.detail["action"] == "paused"

        # a client whose case is closed cannot be paused: recorded on it, compliance told
        state = await wait_for(old_case, lambda s: s.status == "resolved")
        assert state.fields["escalation"]["client_case_paused"] is False
        assert {e.key: e.status for e in state.elements}["tell_compliance_owner"] == "done"
        [recorded] = await events_of(sessions, former_ref, "sanctions_alert_escalation")
        assert recorded.detail["action"] == "recorded"
        assert recorded.detail["alert_ref"] == old_alert.alert_id
