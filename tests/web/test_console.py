"""The case manager console in-process: sign-in, the queue, the case page and its commands
against a real workflow, and "my tasks"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from api.web import console_service as console
from core.settings import DEV_CONSOLE_PASSWORD
from schemas.case import StageInterval
from schemas.enums import CaseStatus, SlaState, Stage
from schemas.snapshot import CaseSnapshot, SlaNow
from store.db import SessionFactory
from store.models import CallbackTaskRow, CaseEvent, CaseTaskRow
from tests.conftest import running_worker, test_settings
from tests.factories import start_case, wait_for_state
from tests.web.conftest import client_for, csrf_from, insert_case, page_csrf
from workflows.onboarding import OnboardingCaseWorkflow


# ------------------------------------------------------------------ pure helpers
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/console/cases/X-1?tab=a", "/console/cases/X-1?tab=a"),
        ("/console/dashboard", "/console/dashboard"),
        ("//evil.example/x", "/console"),
        ("/\\evil.example", "/console"),
        ("https://evil.example/", "/console"),
        ("javascript:alert(1)", "/console"),
        ("console", "/console"),
        ("/x\r\nSet-Cookie: a=b", "/console"),
        ("", "/console"),
        (None, "/console"),
    ],
)
def test_next_is_same_site_relative_only(given: str | None, expected: str) -> None:
    assert console.safe_next(given) == expected


def _state(**changes: Any) -> CaseSnapshot:
    base: dict[str, Any] = {
        "case_ref": "X-1",
        "case_type": "client_onboarding",
        "case_type_version": "1",
        "status": "open",
        "stage": "document_collection",
        "sla": SlaNow(state="on_track", budget_seconds=86400, remaining_seconds=7260),
    }
    base.update(changes)
    return CaseSnapshot(**base)


def test_sla_badge_prefers_live_state_and_says_time_left() -> None:
    badge = console.sla_badge(SlaState.WARNING, status="open", live=_state())
    assert (badge.state, badge.label, badge.detail) == ("on_track", "On track", "2h 01m left")
    paused = console.sla_badge(None, status="paused", live=_state(status="paused"))
    assert paused.state == "paused" and paused.detail == "clock stopped, 2h 01m left"
    late = _state(sla=SlaNow(state="breached", remaining_seconds=-90))
    assert console.sla_badge(None, status="open", live=late).detail == "overdue by 1m 30s"
    assert console.sla_badge("at_risk", status="open", live=None).label == "At risk"
    assert console.sla_badge("breached", status="completed", live=None).state == "closed"


def test_timeline_is_newest_first_in_plain_words() -> None:
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    stages = [
        StageInterval(
            seq=1,
            stage=Stage.DOCUMENT_COLLECTION,
            entered_at=t0,
            exited_at=t0 + timedelta(hours=2),
            outcome="completed",
            sla_outcome="met",
            active_seconds=6000,
            paused_seconds=1200,
        )
    ]
    events = [
        CaseEvent(
            kind="paused",
            actor="maria",
            detail={"reason": "waiting for legal"},
            occurred_at=t0 + timedelta(minutes=30),
        ),
        CaseEvent(kind="stage_entered", actor="system", detail={}, occurred_at=t0),
        CaseEvent(
            kind="sla_escalated",
            actor="sla",
            detail={"level": 1, "target": "onboarding_lead", "priority": "high"},
            occurred_at=t0 + timedelta(hours=1),
        ),
    ]
    lines = [e.text for e in console.build_timeline(stages, events)]
    assert lines == [
        "Left Document collection · completed · SLA met · active 1h 40m · paused 20m 00s",
        "Escalated to onboarding_lead (level 1); priority now high",
        "Paused by maria: waiting for legal",
        "Entered Document collection",
    ]


# ------------------------------------------------------------------ sign-in
async def test_pages_redirect_to_sign_in_and_come_back(web_app: FastAPI) -> None:
    async with client_for(web_app) as client:
        response = await client.get("/console/cases/ABC-1?x=1")
        assert response.status_code == 303
        assert (
            response.headers["location"] == "/console/login?next=%2Fconsole%2Fcases%2FABC-1%3Fx%3D1"
        )
        page = await client.get(response.headers["location"])
        assert page.status_code == 200
        assert 'name="next" value="/console/cases/ABC-1?x=1"' in page.text
        signed = await client.post(
            "/console/login",
            data={
                "csrf_token": csrf_from(page.text),
                "username": "maria",
                "password": DEV_CONSOLE_PASSWORD,
                "next": "/console/cases/ABC-1?x=1",
            },
        )
        assert signed.status_code == 303
        assert signed.headers["location"] == "/console/cases/ABC-1?x=1"
        # an API key does not open console pages
        keyed = await client_for(web_app).get(
            "/console", headers={"X-API-Key": "test-case-manager-key"}
        )
        assert keyed.status_code == 303


async def test_bad_credentials_get_one_generic_error(web_app: FastAPI) -> None:
    async with client_for(web_app) as client:
        token = csrf_from((await client.get("/console/login")).text)
        wrong_password = await client.post(
            "/console/login",
            data={"csrf_token": token, "username": "maria", "password": "nope"},
        )
        unknown_user = await client.post(
            "/console/login",
            data={"csrf_token": token, "username": "mallory", "password": "nope"},
        )
        for response in (wrong_password, unknown_user):
            assert response.status_code == 401
            assert "Unknown username or password." in response.text
            assert "onboarding_console" not in response.headers.get("set-cookie", "") or (
                "user" not in response.text
            )
        assert (await client.get("/console")).status_code == 303  # still signed out


async def test_sign_in_needs_the_forms_csrf_token(web_app: FastAPI) -> None:
    async with client_for(web_app) as client:
        await client.get("/console/login")
        response = await client.post(
            "/console/login",
            data={"username": "maria", "password": DEV_CONSOLE_PASSWORD},
        )
        assert response.status_code == 400
        assert (await client.get("/console")).status_code == 303


async def test_offsite_next_is_ignored_and_sign_out_ends_the_session(web_app: FastAPI) -> None:
    async with client_for(web_app) as client:
        token = csrf_from((await client.get("/console/login")).text)
        response = await client.post(
            "/console/login",
            data={
                "csrf_token": token,
                "username": "olga",
                "password": DEV_CONSOLE_PASSWORD,
                "next": "//evil.example/steal",
            },
        )
        assert response.headers["location"] == "/console"
        queue = await client.get("/console")
        assert queue.status_code == 200 and "Olga Operator" in queue.text
        # the session's token changed at sign-in (no fixation)
        assert csrf_from(queue.text) != token
        # sign-out without the token does nothing
        assert (await client.post("/console/logout")).headers["location"] == "/console"
        assert (await client.get("/console")).status_code == 200
        out = await client.post("/console/logout", data={"csrf_token": csrf_from(queue.text)})
        assert out.headers["location"] == "/console/login"
        assert (await client.get("/console")).status_code == 303


# ------------------------------------------------------------------ queue
async def test_queue_filters_sorts_and_pages(
    console_as: Any, sessions: SessionFactory, web_app: FastAPI
) -> None:
    marker = "Queue Test " + datetime.now(UTC).strftime("%H%M%S%f")
    refs = {}
    for priority, sla in (
        ("normal", "on_track"),
        ("critical", "breached"),
        ("high", "warning"),
        ("urgent", "at_risk"),
    ):
        refs[priority] = await insert_case(
            sessions,
            prefix="Q",
            client={"client_type": "enterprise", "tier": "premium", "name": marker},
            stage="compliance_review",
            priority=priority,
            sla_state=sla,
        )
    maria = await console_as("maria")
    page = await maria.client.get(
        "/console",
        params={
            "client_type": "enterprise",
            "tier": "premium",
            "stage": "compliance_review",
            "sla_state": ["breached", "warning", "at_risk", "on_track"],
            "sort": "priority",
            "dir": "desc",
        },
    )
    assert page.status_code == 200
    order = [ref for ref in _refs_in(page.text) if ref in refs.values()]
    assert order == [refs["critical"], refs["urgent"], refs["high"], refs["normal"]]
    assert 'data-state="breached"' in page.text and ">Breached<" in page.text.replace(
        '<span class="badge-icon" aria-hidden="true"></span>', ""
    )
    only = await maria.client.get(
        "/console", params={"sla_state": "breached", "client_type": "enterprise", "tier": "premium"}
    )
    assert refs["critical"] in only.text and refs["normal"] not in only.text
    # bad filter values are dropped, not a 422
    assert (
        await maria.client.get("/console", params={"status": "nonsense", "page": "x"})
    ).status_code == 200
    # paging: 25 a page, with a next link while more remain
    for _ in range(26):
        await insert_case(sessions, prefix="QP", client={"name": marker + " P"}, stage="welcome")
    first = await maria.client.get("/console", params={"stage": "welcome", "sort": "created"})
    assert first.text.count('<tr data-ref="') == 25 and 'rel="next"' in first.text
    second = await maria.client.get(
        "/console", params={"stage": "welcome", "sort": "created", "page": 2}
    )
    assert 'rel="prev"' in second.text
    assert not set(_refs_in(first.text)) & set(_refs_in(second.text))


def _refs_in(html: str) -> list[str]:
    import re

    return re.findall(r'<tr data-ref="([^"]+)"', html)


# ------------------------------------------------------------------ case page + commands
async def test_case_page_and_commands_on_a_running_case(
    console_as: Any, sessions: SessionFactory, dev_server_env: Any, web_settings: Any
) -> None:
    async with running_worker(dev_server_env.client, sessions, test_settings()) as worker:
        ref, handle = await start_case(dev_server_env, worker)
        await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
        maria = await console_as("maria")
        page = await maria.client.get(f"/console/cases/{ref}")
        assert page.status_code == 200
        assert 'data-testid="sla-badge" data-state="on_track"' in page.text
        assert " left</span>" in page.text  # time left from the live SLA
        ui = f"{web_settings.temporal_ui_url}/namespaces/default/workflows/onboarding-{ref}"
        assert f'href="{ui}"' in page.text
        assert "Case opened by test" in page.text and "Entered Document collection" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")

        # a pause needs a reason: flashed, nothing sent
        r = await maria.post_form(f"/console/cases/{ref}/pause", reason="  ")
        assert r.status_code == 303 and r.headers["location"] == f"/console/cases/{ref}"
        assert "Please give a reason." in (await maria.client.get(r.headers["location"])).text

        r = await maria.post_form(f"/console/cases/{ref}/pause", reason="waiting for legal")
        paused_page = await maria.client.get(r.headers["location"])
        assert "Case paused" in paused_page.text
        assert 'data-state="paused"' in paused_page.text
        assert "Paused by maria: waiting for legal" in paused_page.text
        state = await handle.query(OnboardingCaseWorkflow.state)
        assert state.status == CaseStatus.PAUSED and state.paused_by == "maria"

        # the workflow's refusal (409) comes back as a flash, never a 500
        r = await maria.post_form(f"/console/cases/{ref}/pause", reason="again")
        assert r.status_code == 303
        again = await maria.client.get(r.headers["location"])
        assert "Not done: case" in again.text and "already paused by maria" in again.text
        r = await maria.post_form(f"/console/cases/{ref}/decide", decision="approve")
        wrong_stage = (await maria.client.get(r.headers["location"])).text
        assert "Not done:" in wrong_stage

        r = await maria.post_form(f"/console/cases/{ref}/resume")
        resumed = await maria.client.get(r.headers["location"])
        assert "Case resumed" in resumed.text and 'data-state="paused"' not in resumed.text

        # read-only and wrong-role users are refused on the server, whatever the page shows
        olga = await console_as("olga")
        assert "pause-form" not in (await olga.client.get(f"/console/cases/{ref}")).text
        refused = await olga.post_form(f"/console/cases/{ref}/pause", reason="x")
        assert refused.status_code == 403
        # a form without the session's CSRF token is refused
        assert (
            await maria.client.post(f"/console/cases/{ref}/pause", data={"reason": "x"})
        ).status_code == 400

        # waive documents, then cancel with a closure code: the page falls back to the read
        # model once the workflow has closed
        r = await maria.post_form(
            f"/console/cases/{ref}/documents-received", note="originals seen at the branch"
        )
        assert (
            "Documents accepted by waiver" in (await maria.client.get(r.headers["location"])).text
        )
        r = await maria.post_form(
            f"/console/cases/{ref}/cancel", closure_code="client_withdrew", reason="changed mind"
        )
        assert "Case cancelled" in (await maria.client.get(r.headers["location"])).text
        await handle.result()
        closed = await maria.client.get(f"/console/cases/{ref}")
        assert 'data-state="closed"' in closed.text and "takes no more commands" in closed.text
        r = await maria.post_form(f"/console/cases/{ref}/resume")
        assert "Not done:" in (await maria.client.get(r.headers["location"])).text


async def test_unknown_case_is_a_404_page(console_as: Any) -> None:
    maria = await console_as("maria")
    response = await maria.client.get("/console/cases/NO-SUCH-CASE-1")
    assert response.status_code == 404 and "There is no case NO-SUCH-CASE-1." in response.text
    assert (await maria.client.get("/console/cases/..%2F..")).status_code == 404


async def test_commands_when_temporal_is_unreachable_are_flashed(
    web_settings: Any, sessions: SessionFactory, dev_server_env: Any
) -> None:
    """A case row that is open but has no workflow: the console says so, never a 500."""
    from tests.web.conftest import build_app, sign_in

    app = build_app(web_settings, sessions, dev_server_env.client)
    ref = await insert_case(sessions)
    async with client_for(app) as client:
        await sign_in(client, "maria")
        page = await client.get(f"/console/cases/{ref}")
        assert page.status_code == 200 and "Live state unavailable" in page.text
        r = await client.post(
            f"/console/cases/{ref}/cancel",
            data={"csrf_token": await page_csrf(client), "closure_code": "duplicate_case"},
        )
        assert r.status_code == 303
        assert "Not done:" in (await client.get(r.headers["location"])).text


# ------------------------------------------------------------------ my tasks
async def test_my_tasks_by_role(console_as: Any, sessions: SessionFactory) -> None:
    open_ref = await insert_case(sessions, prefix="TK", stage="compliance_review")
    closed_ref = await insert_case(sessions, prefix="TK", status="completed", stage="welcome")
    now = datetime.now(UTC)
    async with sessions() as s:
        for ref in (open_ref, closed_ref):
            await s.execute(
                insert(CaseTaskRow).values(
                    case_ref=ref,
                    key="source_of_funds",
                    title="Verify source of funds",
                    stage="compliance_review",
                    kind="manual",
                    assignee_role="compliance_reviewer",
                    done=False,
                )
            )
        await s.execute(
            insert(CallbackTaskRow).values(
                case_ref=open_ref,
                stage="compliance_review",
                assignee_role="relationship_manager",
                due_at=now + timedelta(hours=2),
                status="open",
                created_at=now,
            )
        )
        await s.commit()

    rita = await console_as("rita")
    page = (await rita.client.get("/console/tasks")).text
    assert f'data-ref="{open_ref}" data-task="source_of_funds"' in page
    assert closed_ref not in page
    assert f'href="/console/cases/{open_ref}#tasks"' in page
    assert "my-callbacks" not in page

    maria = (await (await console_as("maria")).client.get("/console/tasks")).text
    assert open_ref not in maria

    ravi = (await (await console_as("ravi")).client.get("/console/tasks")).text
    assert f'<tr data-ref="{open_ref}">' in ravi  # the callback, not the task

    ada = (await (await console_as("ada")).client.get("/console/tasks")).text
    assert f'data-ref="{open_ref}" data-task="source_of_funds"' in ada and closed_ref not in ada


async def test_layout_has_nav_and_whoami(console_as: Any) -> None:
    rita = await console_as("rita")
    page = (await rita.client.get("/console")).text
    for link in ('href="/console"', 'href="/console/tasks"', 'href="/console/dashboard"'):
        assert link in page
    assert 'data-testid="whoami">Rita Reviewer<' in page and "Sign out" in page
    assert '<link rel="stylesheet" href="/static/console.css">' in page
    assert "http://" not in page.split("<main")[0].replace("http://www.w3.org", "")
    css = await rita.client.get("/static/console.css")
    assert css.status_code == 200 and ".badge-paused" in css.text


async def test_timeline_events_from_the_read_model(
    console_as: Any, sessions: SessionFactory
) -> None:
    ref = await insert_case(sessions, prefix="TL", status="completed", stage="welcome")
    async with sessions() as s:
        await s.execute(
            insert(CaseEvent).values(
                case_ref=ref,
                event_key="compliance-approve-rita",
                kind="compliance_decision",
                actor="rita",
                detail={"decision": "approve", "reason": None},
                occurred_at=datetime.now(UTC),
            )
        )
        await s.commit()
    page = (await (await console_as("maria")).client.get(f"/console/cases/{ref}")).text
    assert "rita approved the compliance review" in page
