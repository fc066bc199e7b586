"""The notification endpoints, in-process over ASGI, with real Postgres and Temporal."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from temporalio.api.enums.v1 import EventType
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.notifications import NotificationActivities
from api.app import create_app
from notifications import Milestone
from schemas.case import CaseInput, workflow_id_for
from schemas.enums import Channel
from schemas.notifications import CallbackRequest
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import Case
from tests.conftest import new_ref
from tests.conftest import test_settings as make_settings
from tests.delivery.conftest import notify_input
from tests.factories import profile

CLIENT_APP = {"X-API-Key": "dev-client-app-key"}
CASE_MANAGER = {"X-API-Key": "dev-case-manager-key"}
OPERATOR = {"X-API-Key": "dev-operator-key"}


@pytest.fixture
async def api(
    sessions: SessionFactory, dev_server_env: WorkflowEnvironment
) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(make_settings())
    app.state.settings = make_settings()
    app.state.sessions = sessions
    app.state.temporal = dev_server_env.client
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def open_case(sessions: SessionFactory, status: str = "open") -> str:
    ref = new_ref("N")
    async with sessions.begin() as s:
        await s.execute(insert_draft_case(ref=ref, client=profile(), requested_by="test"))
        await s.execute(update(Case).where(Case.ref == ref).values(status=status))
    return ref


async def send(sessions: SessionFactory, ref: str, milestone: Milestone) -> None:
    acts = NotificationActivities(sessions, email=None, sms=None)
    inp = notify_input(ref, milestone, channels=[Channel.EMAIL, Channel.IN_APP])
    await ActivityEnvironment().run(acts.notify, inp)


# ------------------------------------------------------------------ delivery log
async def test_notifications_list_newest_first(api: httpx.AsyncClient, sessions):
    ref = await open_case(sessions)
    await send(sessions, ref, Milestone.CASE_CREATED)
    await send(sessions, ref, Milestone.DOCUMENTS_RECEIVED)

    r = await api.get(f"/cases/{ref}/notifications", headers=CASE_MANAGER)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["milestone"], i["channel"]) for i in items] == [
        ("documents_received", "email"),
        ("documents_received", "in_app"),
        ("case_created", "email"),
        ("case_created", "in_app"),
    ]
    email = items[0]
    assert email["status"] == "local_outbox"
    assert email["provider"] == "local"
    assert email["recipient"] == "ada@example.com"
    assert "not delivered externally" in email["error"]
    assert {"provider_message_id", "sent_at", "created_at", "attempts", "subject"} <= set(email)
    assert (await api.get(f"/cases/{ref}/notifications", headers=OPERATOR)).status_code == 200


async def test_notifications_roles_and_unknown_case(api: httpx.AsyncClient, sessions):
    ref = await open_case(sessions)
    assert (await api.get(f"/cases/{ref}/notifications")).status_code == 401
    bad_key = {"X-API-Key": "nope"}
    assert (await api.get(f"/cases/{ref}/notifications", headers=bad_key)).status_code == 401
    assert (await api.get(f"/cases/{ref}/notifications", headers=CLIENT_APP)).status_code == 403
    assert (await api.get(f"/cases/{ref}/inbox", headers=OPERATOR)).status_code == 403
    assert (await api.get(f"/cases/{ref}/callbacks", headers=CLIENT_APP)).status_code == 403
    missing = new_ref("NONE")
    for path, headers in [
        (f"/cases/{missing}/notifications", CASE_MANAGER),
        (f"/cases/{missing}/inbox", CLIENT_APP),
        (f"/cases/{missing}/callbacks", OPERATOR),
    ]:
        r = await api.get(path, headers=headers)
        assert r.status_code == 404, (path, r.text)


# ------------------------------------------------------------------ inbox
async def test_inbox_unread_count_and_mark_read(api: httpx.AsyncClient, sessions):
    ref = await open_case(sessions)
    other = await open_case(sessions)
    await send(sessions, ref, Milestone.CASE_CREATED)
    await send(sessions, ref, Milestone.DOCUMENTS_RECEIVED)
    await send(sessions, other, Milestone.CASE_CREATED)

    r = await api.get(f"/cases/{ref}/inbox", headers=CLIENT_APP)
    assert r.status_code == 200, r.text
    inbox = r.json()
    assert inbox["unread"] == 2
    assert [i["milestone"] for i in inbox["items"]] == ["documents_received", "case_created"]
    assert all(i["read"] is False and i["body_text"] for i in inbox["items"])
    newest = inbox["items"][0]["id"]

    r = await api.post(f"/cases/{ref}/inbox/{newest}/read", headers=CLIENT_APP)
    assert r.status_code == 200, r.text
    assert r.json()["read"] is True
    first_read_at = r.json()["read_at"]
    again = await api.post(f"/cases/{ref}/inbox/{newest}/read", headers=CASE_MANAGER)
    assert again.status_code == 200
    assert again.json()["read_at"] == first_read_at  # idempotent

    inbox = (await api.get(f"/cases/{ref}/inbox", headers=CASE_MANAGER)).json()
    assert inbox["unread"] == 1

    other_id = (await api.get(f"/cases/{other}/inbox", headers=CLIENT_APP)).json()["items"][0]["id"]
    r = await api.post(f"/cases/{ref}/inbox/{other_id}/read", headers=CLIENT_APP)
    assert r.status_code == 404
    assert (await api.get(f"/cases/{other}/inbox", headers=CLIENT_APP)).json()["unread"] == 1
    # the email row of the same message is not an inbox item
    log = (await api.get(f"/cases/{ref}/notifications", headers=CASE_MANAGER)).json()["items"]
    email_id = next(i["id"] for i in log if i["channel"] == "email")
    assert (
        await api.post(f"/cases/{ref}/inbox/{email_id}/read", headers=CLIENT_APP)
    ).status_code == 404


# ------------------------------------------------------------------ callbacks
async def test_callbacks_list_and_done(api: httpx.AsyncClient, sessions):
    ref = await open_case(sessions)
    acts = NotificationActivities(sessions, email=None, sms=None)
    due = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    await ActivityEnvironment().run(
        acts.schedule_callback,
        CallbackRequest(case_ref=ref, stage="welcome", due_at=due, client_name="Ada Lovelace"),
    )
    r = await api.get(f"/cases/{ref}/callbacks", headers=OPERATOR)
    assert r.status_code == 200, r.text
    [task] = r.json()["items"]
    assert (task["stage"], task["status"], task["done_by"]) == ("welcome", "open", None)

    done_path = f"/cases/{ref}/callbacks/{task['id']}/done"
    body = {"actor": "rm@bank.example"}
    assert (await api.post(done_path, json=body, headers=OPERATOR)).status_code == 403
    assert (await api.post(done_path, json={}, headers=CASE_MANAGER)).status_code == 422
    r = await api.post(done_path, json=body, headers=CASE_MANAGER)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["done_by"]) == ("done", "rm@bank.example")
    r = await api.post(done_path, json={"actor": "someone-else"}, headers=CASE_MANAGER)
    assert r.json()["done_by"] == "rm@bank.example"

    other = await open_case(sessions)
    r = await api.post(
        f"/cases/{other}/callbacks/{task['id']}/done", json=body, headers=CASE_MANAGER
    )
    assert r.status_code == 404


# ------------------------------------------------------------------ preferences
PREFS = {"channels": ["sms", "email", "in_app"], "language": "en", "callback_stages": ["welcome"]}


async def test_preferences_stored_and_signalled(
    api: httpx.AsyncClient, sessions, dev_server_env: WorkflowEnvironment
):
    ref = await open_case(sessions)
    # a case workflow nobody polls for: running, so it can take the signal
    handle = await dev_server_env.client.start_workflow(
        "OnboardingCaseWorkflow",
        CaseInput(case_ref=ref, client=profile(), requested_by="test"),
        id=workflow_id_for(ref),
        task_queue=f"idle-{uuid.uuid4().hex[:8]}",
    )
    try:
        r = await api.put(f"/cases/{ref}/preferences", json=PREFS, headers=CLIENT_APP)
        assert r.status_code == 200, r.text
        assert r.json()["workflow_notified"] is True
        assert r.json()["contact_preferences"]["channels"] == ["sms", "email", "in_app"]
        signals = [
            e.workflow_execution_signaled_event_attributes
            async for e in handle.fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ]
        assert [s.signal_name for s in signals] == ["update_preferences"]
        assert b'"sms"' in signals[0].input.payloads[0].data
    finally:
        await handle.terminate("test done")
    async with sessions() as s:
        case = await s.get(Case, ref)
        assert case.profile["contact_preferences"] == PREFS
        assert case.profile["name"] == "Ada Lovelace"  # the rest of the profile is kept


async def test_preferences_stored_when_workflow_not_running(api: httpx.AsyncClient, sessions):
    ref = await open_case(sessions)  # no workflow was ever started for it
    body = {"channels": ["in_app"]}
    r = await api.put(f"/cases/{ref}/preferences", json=body, headers=CASE_MANAGER)
    assert r.status_code == 200, r.text
    assert r.json()["workflow_notified"] is False
    async with sessions() as s:
        case = await s.get(Case, ref)
        assert case.profile["contact_preferences"]["channels"] == ["in_app"]


async def test_preferences_validation_roles_and_state(api: httpx.AsyncClient, sessions):
    ref = await open_case(sessions)
    path = f"/cases/{ref}/preferences"
    r = await api.put(path, json={"channels": ["fax"]}, headers=CLIENT_APP)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][:2] == ["body", "channels"]
    dup = await api.put(path, json={"channels": ["sms", "sms"]}, headers=CLIENT_APP)
    assert dup.status_code == 422
    empty = await api.put(path, json={"channels": []}, headers=CLIENT_APP)
    assert empty.status_code == 422
    assert (await api.put(path, json=PREFS)).status_code == 401
    assert (await api.put(path, json=PREFS, headers=OPERATOR)).status_code == 403
    missing = f"/cases/{new_ref('NONE')}/preferences"
    assert (await api.put(missing, json=PREFS, headers=CLIENT_APP)).status_code == 404
    closed = await open_case(sessions, status="completed")
    r = await api.put(f"/cases/{closed}/preferences", json=PREFS, headers=CLIENT_APP)
    assert r.status_code == 409
    async with sessions() as s:
        case = await s.get(Case, closed)
        assert case.profile["contact_preferences"]["channels"] == ["email", "in_app"]
