"""Work queues over HTTP on the real stack: take, assign, reassign and release change who
holds the work, are audited, tell both people, and refuse a person who may not act in the
stage (403). A new stage releases a holder who may not act in it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.settings import _dev_console_users
from store.db import SessionFactory
from store.models import CaseEvent, NotificationRow
from tests.api_engine.conftest import MANAGER, REVIEWER, REVIEWER_2, serving_api
from tests.api_engine.test_engine_over_http import wait_state
from tests.conftest import new_ref
from tests.factories import profile_json
from tests.waiting import eventually
from tests.web.conftest import sign_in

DESK_REVIEW = """\
name: desk_review
version: "1"
title: Desk review
stages:
  - key: review
    title: Review
    owner_role: compliance_reviewer
    access: [case_manager, compliance_reviewer]
    sla: 8h
    elements:
      - {key: check_file, kind: task, title: Check the file, assignee_role: compliance_reviewer}
      - key: sign_off
        kind: approval
        title: Sign off
        approver_roles: [compliance_reviewer]
        required: 2
  - key: handover
    title: Handover
    owner_role: relationship_manager
    access: [relationship_manager, case_manager]
    elements:
      - {key: call_client, kind: task, title: Call the client, assignee_role: relationship_manager}
"""
OMAR = "omar@example.com"


@pytest.fixture
async def desk(
    tmp_path: Path, sessions: SessionFactory, dev_server_env: Any
) -> AsyncIterator[httpx.AsyncClient]:
    types = tmp_path / "types"
    types.mkdir()
    (types / "desk_review.yaml").write_text(DESK_REVIEW, encoding="utf-8")
    users = _dev_console_users()
    users["omar"] = users["omar"].model_copy(update={"email": OMAR})
    async with serving_api(
        tmp_path, sessions, dev_server_env.client, types, console_users=users
    ) as http:
        yield http


async def _events(sessions: SessionFactory, ref: str, count: int) -> list[CaseEvent]:
    async def read() -> list[CaseEvent]:
        async with sessions() as s:
            rows = await s.scalars(
                select(CaseEvent)
                .where(CaseEvent.case_ref == ref, CaseEvent.kind.like("work_%"))
                .order_by(CaseEvent.id)
            )
            return list(rows)

    return await eventually(read, lambda rows: len(rows) >= count, what=f"{count} work events")


async def test_take_assign_reassign_and_stage_access(
    desk: httpx.AsyncClient, sessions: SessionFactory, dev_server_env: Any
) -> None:
    http = desk
    ref = new_ref("WQ")
    body = {"reference": ref, "case_type": "desk_review", "client": profile_json()}
    r = await http.post("/cases", json=body, headers=MANAGER)
    assert r.status_code == 201, r.text
    workflow_id = r.json()["workflow_id"]
    try:
        await wait_state(
            http,
            ref,
            lambda s: any(
                e["key"] == "check_file" and e["status"] == "active" for e in s["elements"]
            ),
        )
        # rita (compliance reviewer) takes the task from her team's queue
        queue = await http.get("/work/queue?role=compliance_reviewer", headers=REVIEWER)
        assert queue.status_code == 200
        assert any(
            i["case_ref"] == ref and i["item"] == "check_file" for i in queue.json()["items"]
        )
        await sign_in(http, "rita")
        took = await http.post(
            f"/cases/{ref}/assignment", json={"element": "check_file", "take": True}
        )
        assert took.status_code == 200, took.text
        assert "taken by rita" in took.json()["message"]

        async def rita_holds() -> list[dict[str, Any]]:
            mine = await http.get("/work/mine")
            assert mine.status_code == 200, mine.text
            return list(mine.json()["items"])

        items = await eventually(
            rita_holds, lambda items: any(i["case_ref"] == ref for i in items), what="my work"
        )
        mine = next(i for i in items if i["case_ref"] == ref)
        assert (mine["item"], mine["assignee"], mine["kind"]) == ("check_file", "rita", "task")
        assert mine["due_at"] is not None  # the stage's SLA: My work sorts by it
        http.cookies.clear()

        # moving work someone holds needs a reason
        no_reason = await http.post(
            f"/cases/{ref}/assignment",
            json={"element": "check_file", "assignee": "omar"},
            headers=MANAGER,
        )
        assert no_reason.status_code == 422 and "needs a reason" in no_reason.text
        moved = await http.post(
            f"/cases/{ref}/assignment",
            json={"element": "check_file", "assignee": "omar", "reason": "rita is on leave"},
            headers=MANAGER,
        )
        assert moved.status_code == 200, moved.text
        state = (await http.get(f"/cases/{ref}/state", headers=MANAGER)).json()
        task = next(e for e in state["elements"] if e["key"] == "check_file")
        assert (task["assignee"], task["assignee_team"]) == ("omar", "compliance_reviewer")

        # ravi is a relationship manager: the review stage is not his
        refused = await http.post(
            f"/cases/{ref}/assignment", json={"assignee": "ravi"}, headers=MANAGER
        )
        assert refused.status_code == 403
        assert "may not act in stage review" in refused.json()["detail"]
        unknown = await http.post(
            f"/cases/{ref}/assignment", json={"assignee": "nobody"}, headers=MANAGER
        )
        assert unknown.status_code == 422
        # an API key is no person: it cannot take
        keyed = await http.post(f"/cases/{ref}/assignment", json={"take": True}, headers=MANAGER)
        assert keyed.status_code == 422
        case_to_rita = await http.post(
            f"/cases/{ref}/assignment", json={"assignee": "rita"}, headers=MANAGER
        )
        assert case_to_rita.status_code == 200, case_to_rita.text
        again = await http.post(
            f"/cases/{ref}/assignment",
            json={"assignee": "rita", "reason": "x"},
            headers=MANAGER,
        )
        assert again.status_code == 409

        events = await _events(sessions, ref, 3)
        # (empty values are left out of the stored detail)
        assert [(e.kind, e.actor, e.detail.get("from"), e.detail.get("to")) for e in events] == [
            ("work_taken", "rita", None, "rita"),
            ("work_reassigned", events[1].actor, "rita", "omar"),
            ("work_assigned", events[2].actor, None, "rita"),
        ]
        assert events[1].detail["reason"] == "rita is on leave"

        async def notices() -> list[NotificationRow]:
            async with sessions() as s:
                rows = await s.scalars(
                    select(NotificationRow).where(
                        NotificationRow.case_ref == ref,
                        NotificationRow.milestone == "work_assigned",
                    )
                )
                return list(rows)

        # taking told nobody; the reassignment told omar (at his own address) and rita (at her
        # team's: she has none of her own); the case assigned to rita told her too
        rows = await eventually(notices, lambda rows: len(rows) >= 3, what="work notices")
        assert sorted((r.recipient, r.subject) for r in rows) == [
            ("compliance@example.com", f"[Assigned to you] {ref}: case {ref}"),
            ("compliance@example.com", f"[Moved from you] {ref}: Check the file"),
            (OMAR, f"[Assigned to you] {ref}: Check the file"),
        ]

        # the case moves to handover: rita may not act there, so the case goes back to the queue
        done = await http.post(
            f"/cases/{ref}/tasks/check_file/complete", json={"note": "ok"}, headers=REVIEWER
        )
        assert done.status_code == 200, done.text
        for key in (REVIEWER, REVIEWER_2):
            vote = await http.post(
                f"/cases/{ref}/decision", json={"decision": "approve"}, headers=key
            )
            assert vote.status_code == 200, vote.text
        state = await wait_state(http, ref, lambda s: s["stage"] == "handover")
        assert state["assignee"] is None
        events = await _events(sessions, ref, 4)
        assert (events[3].kind, events[3].detail["via"]) == ("work_released", "stage_access")
    finally:
        await dev_server_env.client.get_workflow_handle(workflow_id).terminate("test cleanup")
