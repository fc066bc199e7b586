"""Engine cases through HTTP with a real worker: the in-process API, real Postgres, the Temporal
dev server and a worker running CaseWorkflow (and the frozen onboarding workflow)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from store.db import SessionFactory
from store.models import CaseEvent
from tests.api_engine.conftest import (
    ADMIN,
    CLIENT,
    MANAGER,
    MANAGER_2,
    REVIEWER,
    RM,
    build_app,
    engine_settings,
)
from tests.conftest import new_ref, running_worker
from tests.factories import profile_json
from tests.waiting import eventually


@dataclass
class Stack:
    http: httpx.AsyncClient
    temporal: Any
    sessions: SessionFactory
    task_queue: str


@pytest.fixture
async def stack(
    tmp_path: Path, sessions: SessionFactory, dev_server_env: Any
) -> AsyncIterator[Stack]:
    base = engine_settings(tmp_path)
    async with running_worker(dev_server_env.client, sessions, base) as worker:
        settings = base.model_copy(update={"temporal_task_queue": worker.task_queue})
        app = build_app(settings, sessions, dev_server_env.client)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http:
            yield Stack(
                http=http,
                temporal=dev_server_env.client,
                sessions=sessions,
                task_queue=worker.task_queue,
            )
            await _close_open_cases(http, dev_server_env.client)


OPENED: list[str] = []


async def _close_open_cases(http: httpx.AsyncClient, temporal: Any) -> None:
    """Cancel what a test left running, so no timers outlive the worker."""
    while OPENED:
        ref = OPENED.pop()
        view = (await http.get(f"/cases/{ref}", headers=ADMIN)).json()
        if view.get("status") in ("closed", "cancelled", "completed", "rejected", None):
            continue
        with contextlib.suppress(Exception):  # already gone is fine
            await temporal.get_workflow_handle(view["workflow_id"]).terminate("test cleanup")


async def open_order(http: httpx.AsyncClient, value: float, **data: Any) -> dict[str, Any]:
    ref = new_ref("ORD")
    body = {
        "reference": ref,
        "case_type": "order_approval",
        "client": profile_json(),
        "data": {"order_id": f"SO-{ref}", "order_value": value, "currency": "GBP", **data},
    }
    r = await http.post("/cases", json=body, headers=MANAGER)
    assert r.status_code == 201, r.text
    OPENED.append(ref)
    again = await http.post("/cases", json=body, headers=MANAGER)
    assert again.status_code == 200 and again.json()["workflow_id"] == r.json()["workflow_id"]
    return dict(r.json())


async def wait_state(
    http: httpx.AsyncClient,
    ref: str,
    predicate: Callable[[dict[str, Any]], bool],
    *,
    headers: dict[str, str] = ADMIN,
    timeout: float = 30,
) -> dict[str, Any]:

    async def read() -> tuple[int, Any]:
        r = await http.get(f"/cases/{ref}/state", headers=headers)
        return r.status_code, r.json() if r.status_code == 200 else r.text

    _, state = await eventually(
        read,
        lambda answer: answer[0] == 200 and predicate(answer[1]),
        what=f"GET /cases/{ref}/state to match",
        timeout=timeout,
    )
    return dict(state)


def element(snapshot: dict[str, Any], key: str) -> dict[str, Any] | None:
    return next((e for e in snapshot["elements"] if e["key"] == key), None)


def approval_open(s: dict[str, Any]) -> bool:
    el = element(s, "group_approval")
    return s["stage"] == "approval" and el is not None and el["status"] == "active"


async def test_large_order_needs_two_approvals_from_two_identities(stack: Stack) -> None:
    http = stack.http
    view = await open_order(http, 60000)
    ref = view["reference"]
    assert view["case_type"] == "order_approval" and view["engine"] == "case"
    assert view["workflow_id"] == f"order-{ref}"
    desc = await stack.temporal.get_workflow_handle(view["workflow_id"]).describe()
    assert desc.workflow_type == "CaseWorkflow"

    snap = await wait_state(http, ref, approval_open)
    assert snap["engine"] == "case" and snap["case_type"] == "order_approval"
    assert "decide" in snap["allowed_actions"]

    first = await http.post(f"/cases/{ref}/decision", json={"decision": "approve"}, headers=MANAGER)
    assert first.status_code == 200, first.text
    assert first.json()["stage"] == "approval"
    snap = await wait_state(
        http, ref, lambda s: bool((element(s, "group_approval") or {})["votes"])
    )
    (vote,) = element(snap, "group_approval")["votes"]  # type: ignore[index]
    assert vote["actor"].startswith("case_manager:")  # the key's identity, not a typed name
    # the same identity cannot give the second approval, whatever its body says
    twice = await http.post(f"/cases/{ref}/decision", json={"decision": "approve"}, headers=MANAGER)
    assert twice.status_code == 409, twice.text
    # who approves is never read from a body
    spoof = await http.post(
        f"/cases/{ref}/decision",
        json={"decision": "approve", "actor": "someone-else", "role": "compliance_reviewer"},
        headers=MANAGER,
    )
    assert spoof.status_code == 422, spoof.text
    # a relationship manager may not act in this stage (access: case_manager, compliance_reviewer)
    denied = await http.get(f"/cases/{ref}", headers=RM)
    assert denied.status_code == 403, denied.text

    second = await http.post(
        f"/cases/{ref}/decision", json={"decision": "approve"}, headers=REVIEWER
    )
    assert second.status_code == 200, second.text

    done = await wait_state(http, ref, lambda s: s["status"] in ("resolved", "closed"))
    assert done["resolution"] == "completed", done
    assert [v["stage"] for v in done["history"]][:3] == ["intake", "approval", "fulfilment"]
    actors = approvers(await trail_until_resolved(stack.sessions, ref))
    assert len(actors) == 2 and vote["actor"] in actors, actors
    assert any(a.startswith("compliance_reviewer:") for a in actors)


async def trail_until_resolved(sessions: SessionFactory, ref: str) -> list[CaseEvent]:
    """The case's audit trail once it records the resolution: the read model follows the
    workflow a moment later, and projects in order, so every earlier event is there too."""

    async def trail() -> list[CaseEvent]:
        async with sessions() as s:
            query = select(CaseEvent).where(CaseEvent.case_ref == ref).order_by(CaseEvent.id)
            return list((await s.scalars(query)).all())

    return await eventually(
        trail,
        lambda events: any(e.kind == "case_resolved" for e in events),
        what=f"case_resolved in {ref}'s audit trail",
    )


def approvers(trail: list[CaseEvent]) -> set[str]:
    return {e.actor for e in trail if e.kind == "approval_approve"}


async def test_order_below_the_threshold_resolves_without_approval(stack: Stack) -> None:
    http = stack.http
    view = await open_order(http, 40000)
    ref = view["reference"]
    done = await wait_state(http, ref, lambda s: s["status"] in ("resolved", "closed"))
    assert done["resolution"] == "completed", done
    assert [v["stage"] for v in done["history"]][:3] == ["intake", "approval", "fulfilment"]
    trail = await trail_until_resolved(stack.sessions, ref)
    assert approvers(trail) == set()
    assert "approval_requested" not in {e.kind for e in trail}
    r = await http.post(f"/cases/{ref}/decision", json={"decision": "approve"}, headers=MANAGER)
    assert r.status_code == 409, r.text


async def test_pause_resume_and_refusals_on_an_engine_case(stack: Stack) -> None:
    http = stack.http
    view = await open_order(http, 60000)
    ref = view["reference"]
    await wait_state(http, ref, approval_open)
    resume = await http.post(f"/cases/{ref}/resume", json={}, headers=MANAGER)
    assert resume.status_code == 409, resume.text  # not paused
    paused = await http.post(
        f"/cases/{ref}/pause", json={"reason": "check credit"}, headers=MANAGER
    )
    assert paused.status_code == 202, paused.text
    again = await http.post(f"/cases/{ref}/pause", json={"reason": "again"}, headers=MANAGER_2)
    assert again.status_code == 409, again.text
    snap = await wait_state(http, ref, lambda s: s["status"] == "paused")
    assert snap["paused_by"] == "case_manager:" + snap["paused_by"].split(":")[1]
    resumed = await http.post(f"/cases/{ref}/resume", json={"reason": "ok"}, headers=MANAGER)
    assert resumed.status_code == 202, resumed.text
    await wait_state(http, ref, lambda s: s["status"] == "open")
    # commands the current stage does not have: refused by the workflow's validators
    skip = await http.post(
        f"/cases/{ref}/elements/record_fulfilment/skip", json={"reason": "n/a"}, headers=MANAGER
    )
    assert skip.status_code in (409, 422), skip.text
    back = await http.post(
        f"/cases/{ref}/send-back", json={"to_stage": "nowhere", "reason": "x"}, headers=MANAGER
    )
    assert back.status_code in (409, 422), back.text
    msg = await http.post(f"/cases/{ref}/messages", json={"text": "Any news?"}, headers=CLIENT)
    assert msg.status_code in (200, 409), msg.text
    cancel = await http.post(
        f"/cases/{ref}/cancel",
        json={"closure_code": "customer_cancelled", "reason": "changed mind"},
        headers=MANAGER,
    )
    assert cancel.status_code == 200, cancel.text
    await wait_state(http, ref, lambda s: s["status"] == "cancelled")
    late = await http.post(f"/cases/{ref}/pause", json={"reason": "x"}, headers=MANAGER)
    assert late.status_code == 409


async def test_frozen_onboarding_case_keeps_its_workflow_and_answers_a_snapshot(
    stack: Stack, sessions: SessionFactory
) -> None:
    """A case opened before the engine: its commands go to OnboardingCaseWorkflow by name, and
    /state adapts its answer to CaseSnapshot."""
    from sqlalchemy import update

    from schemas.case import CaseInput, workflow_id_for
    from store.cases import insert_draft_case
    from store.models import Case
    from tests.factories import profile

    http = stack.http
    ref = new_ref("OLD")
    async with sessions() as s:
        await s.execute(insert_draft_case(ref=ref, client=profile(), requested_by="test"))
        await s.execute(update(Case).where(Case.ref == ref).values(status="open"))
        await s.commit()
    task_queue = stack.task_queue
    await stack.temporal.start_workflow(
        "OnboardingCaseWorkflow",
        CaseInput(case_ref=ref, client=profile(), requested_by="test"),
        id=workflow_id_for(ref),
        task_queue=task_queue,
    )
    OPENED.append(ref)
    snap = await wait_state(http, ref, lambda s: s["stage"] == "document_collection")
    assert (snap["engine"], snap["case_type"]) == ("onboarding-v1", "client_onboarding")
    assert {"pause", "waive_documents", "cancel"} <= set(snap["allowed_actions"])
    assert [s["key"] for s in snap["stages"]][:2] == ["acknowledgement", "document_collection"]
    assert snap["history"][0]["stage"] == "acknowledgement"
    view = (await http.get(f"/cases/{ref}", headers=MANAGER)).json()
    assert view["engine"] == "onboarding-v1"

    paused = await http.post(f"/cases/{ref}/pause", json={"reason": "call client"}, headers=MANAGER)
    assert paused.status_code == 202, paused.text
    await wait_state(http, ref, lambda s: s["status"] == "paused")
    again = await http.post(f"/cases/{ref}/pause", json={"reason": "x"}, headers=MANAGER)
    assert again.status_code == 409
    resumed = await http.post(f"/cases/{ref}/resume", json={}, headers=MANAGER)
    assert resumed.status_code == 202, resumed.text
    snap = await wait_state(http, ref, lambda s: s["status"] != "paused")
    assert snap["pauses"][0]["reason"] == "call client"
    early = await http.post(
        f"/cases/{ref}/compliance-decision", json={"decision": "approve"}, headers=REVIEWER
    )
    assert early.status_code == 409, early.text
    engine_only = await http.post(f"/cases/{ref}/reopen", json={"reason": "x"}, headers=MANAGER)
    assert engine_only.status_code == 409
    waived = await http.post(
        f"/cases/{ref}/documents/waive", json={"note": "originals seen"}, headers=MANAGER
    )
    assert waived.status_code == 200, waived.text
    await wait_state(http, ref, lambda s: s["stage"] != "document_collection")
    cancelled = await http.post(
        f"/cases/{ref}/cancel", json={"closure_code": "client_withdrew"}, headers=MANAGER
    )
    assert cancelled.status_code == 200, cancelled.text
    await wait_state(http, ref, lambda s: s["status"] == "cancelled")
