"""The portal on cases of the generic case engine: the pinned plan's client wording, proposals
the client accepts or rejects, messages, and documents asked for only while a documents
element is active."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select, update

from core.settings import Settings
from schemas.engine_commands import CommandResult, CompleteTaskCmd, WaiveDocuments
from store.db import SessionFactory
from store.models import Case
from tests.conftest import RunningWorker
from tests.engine.helpers import start, wait_for
from tests.portal.conftest import csrf_of, token_for
from tests.waiting import eventually

REFUND = {"order_id": "ORD-9", "return_type": "refund", "has_receipt": True, "amount": 40}


async def _opened(sessions: SessionFactory, ref: str) -> None:
    """As ``POST /cases`` does once the workflow started: the draft row becomes open."""
    async with sessions() as s:
        await s.execute(
            update(Case).where(Case.ref == ref, Case.status == "draft").values(status="open")
        )
        await s.commit()


async def test_open_proposal_is_accepted_or_rejected_by_the_client(
    api: httpx.AsyncClient,
    portal_settings: Settings,
    sessions: SessionFactory,
    dev_server_env: Any,
    worker: RunningWorker,
) -> None:
    client = dev_server_env.client
    ref, handle = await start(
        client,
        sessions,
        worker.task_queue,
        "return_request",
        data=REFUND,
        started=worker.started_cases,
    )
    await _opened(sessions, ref)
    await wait_for(handle, lambda s: "complete_task" in s.allowed_actions)
    token = token_for(portal_settings, ref)
    page = (await api.get(f"/portal/{token}")).text
    # the pinned plan in the client's words; no documents element, so nothing to upload
    assert "We are reviewing your return" in page and "Processing your return" in page
    assert "Step 1 of 2" in page
    assert "Return request: case" in page
    assert 'enctype="multipart/form-data"' not in page
    assert "Your answer is needed" not in page
    assert 'action="/portal/' in page and "/messages" in page  # the client may write

    await handle.execute_update(
        "complete_task",
        CompleteTaskCmd(actor="ravi", role="relationship_manager", task_key="tell_client_decision"),
        result_type=CommandResult,
    )
    await wait_for(handle, lambda s: s.proposal is not None)
    page = (await api.get(f"/portal/{token}")).text
    assert "Your answer is needed" in page
    assert "refund the amount of your return" in page
    assert 'id="proposal-accept"' in page and 'id="proposal-reject"' in page
    assert "Waiting for your answer" in page and "Step 2 of 2" in page

    csrf = await csrf_of(api, token)
    # a rejection without a reason is the client's to fix, and nothing is sent
    bare = await api.post(f"/portal/{token}/proposal", data={"csrf": csrf, "decision": "reject"})
    assert bare.status_code == 422 and "tell us why" in bare.text
    assert (await wait_for(handle, lambda s: True)).proposal is not None

    rejected = await api.post(
        f"/portal/{token}/proposal",
        data={"csrf": csrf, "decision": "reject", "reason": "I asked for an exchange instead"},
    )
    assert rejected.status_code == 303, rejected.text
    assert rejected.headers["location"] == f"/portal/{token}?notice=proposal_rejected#proposal"
    state = await wait_for(handle, lambda s: s.stage == "review")
    assert state.proposal is None
    assert any(v.outcome == "sent_back" for v in state.history)
    after = (await api.get(rejected.headers["location"])).text
    assert "we will look at this again" in after
    assert "Your answer is needed" not in after and "Step 1 of 2" in after

    # the proposal is gone now: answering again is a friendly refusal, not an error page
    again = await api.post(f"/portal/{token}/proposal", data={"csrf": csrf, "decision": "accept"})
    assert again.status_code == 409 and "cannot take this right now" in again.text

    # a message goes on the case
    sent = await api.post(f"/portal/{token}/messages", data={"csrf": csrf, "text": "Thanks!"})
    assert sent.status_code == 303
    assert sent.headers["location"].endswith("?notice=message_sent#write")


async def test_waived_documents_ask_for_nothing(
    api: httpx.AsyncClient,
    portal_settings: Settings,
    sessions: SessionFactory,
    dev_server_env: Any,
    worker: RunningWorker,
) -> None:
    client = dev_server_env.client
    ref, handle = await start(
        client, sessions, worker.task_queue, "client_onboarding", started=worker.started_cases
    )
    await _opened(sessions, ref)
    await wait_for(handle, lambda s: "waive_documents" in s.allowed_actions)
    token = token_for(portal_settings, ref)
    page = (await api.get(f"/portal/{token}")).text
    assert "Waiting for your documents" in page
    assert page.count('data-status="missing"') == 2
    assert "Please upload: Government-issued photo ID" in page
    assert "Step 2 of 6" in page  # security review is routed out for an individual

    await handle.execute_update(
        "waive_documents",
        WaiveDocuments(actor="maria", role="case_manager", note="originals seen at the branch"),
        result_type=CommandResult,
    )
    await wait_for(handle, lambda s: s.stage != "document_collection")
    page = (await api.get(f"/portal/{token}")).text
    assert "Nothing needed from you right now." in page
    assert 'data-status="missing"' not in page and "Please upload" not in page
    assert "Not received yet" not in page
    assert 'enctype="multipart/form-data"' not in page  # no upload form either
    assert "Waiting for your documents" not in page


async def test_accepted_refund_then_a_low_score_reopens_the_case(
    api: httpx.AsyncClient,
    portal_settings: Settings,
    sessions: SessionFactory,
    dev_server_env: Any,
    worker: RunningWorker,
) -> None:
    client = dev_server_env.client
    ref, handle = await start(
        client,
        sessions,
        worker.task_queue,
        "return_request",
        data=REFUND,
        started=worker.started_cases,
    )
    await _opened(sessions, ref)
    await wait_for(handle, lambda s: "complete_task" in s.allowed_actions)
    await handle.execute_update(
        "complete_task",
        CompleteTaskCmd(actor="ravi", role="relationship_manager", task_key="tell_client_decision"),
        result_type=CommandResult,
    )
    await wait_for(handle, lambda s: s.proposal is not None)
    token = token_for(portal_settings, ref)
    csrf = await csrf_of(api, token)
    accepted = await api.post(
        f"/portal/{token}/proposal", data={"csrf": csrf, "decision": "accept"}
    )
    assert accepted.status_code == 303
    assert accepted.headers["location"].endswith("?notice=proposal_accepted#proposal")
    await wait_for(handle, lambda s: s.status == "resolved")
    await _wait_row_status(sessions, ref, "resolved")
    page = (await api.get(f"/portal/{token}")).text
    assert "Complete" in page and "How did we do?" in page and "Step 2 of 2" in page

    low = await api.post(f"/portal/{token}/nps", data={"csrf": csrf, "score": "2"})
    assert low.status_code == 303
    assert low.headers["location"].endswith("?notice=nps_reopened#feedback")
    state = await wait_for(handle, lambda s: s.status != "resolved")
    assert state.stage == "review"  # the case type's reopen stage
    assert "your case is open again" in (await api.get(low.headers["location"])).text


async def _wait_row_status(sessions: SessionFactory, ref: str, status: str) -> None:
    async def row_status() -> str | None:
        async with sessions() as s:
            return await s.scalar(select(Case.status).where(Case.ref == ref))

    await eventually(row_status, lambda now: now == status, what=f"case {ref}'s row to be {status}")
