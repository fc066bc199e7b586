"""Work queues in the console: My work and the team queue (take, release, complete), who holds
what on the case page (take, assign to), the team workload page and rebalancing (run now,
apply or dismiss a proposed move), with every refusal shown as a flash, never a 500."""

from __future__ import annotations

import html as htmllib
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import HTTPException
from sqlalchemy import update

from api.services import work as work_service
from schemas.contracts import RebalanceReport
from store.db import SessionFactory
from store.models import Case, RebalanceMove, RebalanceRun
from tests.conftest import running_worker, test_settings
from tests.engine.helpers import snapshot, start, wait_for
from tests.waiting import eventually
from tests.web.conftest import Console, insert_case, mark_started

VENDOR = {"vendor_name": "Acme Supplies Ltd", "annual_spend": 12000}
TASK = "collect_vendor_info"  # a case manager's task, the first step of the vendor assessment
FLASH = re.compile(r'data-testid="flash">([^<]*)<')


def flashes(page: str) -> list[str]:
    return [htmllib.unescape(m) for m in FLASH.findall(page)]


def form(page: str, testid: str) -> str:
    """The HTML of the form (or element) with ``data-testid=testid``, up to its end tag."""
    start = page.index(f'data-testid="{testid}"')
    return page[start : page.index("</form>", start)]


def section(page: str, testid: str) -> str:
    """From the element with ``data-testid=testid`` to the end of its table."""
    start = page.index(f'data-testid="{testid}"')
    return page[start : page.index("</table>", start)]


async def follow(c: Console, response: httpx.Response) -> str:
    assert response.status_code == 303, response.text[:300]
    page = await c.client.get(response.headers["location"])
    assert page.status_code == 200, page.text[:300]
    return page.text


async def new_proposal(
    sessions: SessionFactory, *, ref: str, item: str, title: str, from_person: str, to: str
) -> int:
    """A rebalancing run that proposed one move (as a run for a team that does not move work
    automatically leaves it)."""
    now = datetime.now(UTC)
    async with sessions.begin() as s:
        run = RebalanceRun(
            run_key=f"test-{uuid.uuid4().hex}",
            trigger="manual",
            requested_by="test",
            started_at=now,
            finished_at=now,
            proposed=1,
        )
        s.add(run)
        await s.flush()
        move = RebalanceMove(
            run_id=run.id,
            team="case_manager",
            case_ref=ref,
            item=item,
            title=title,
            from_person=from_person,
            to_person=to,
            status="proposed",
            detail=f"{from_person} holds too much near breach",
            created_at=now,
        )
        s.add(move)
        await s.flush()
        return int(move.id)


async def test_take_refuse_assign_move_and_complete_on_an_engine_case(
    console_as: Any, sessions: SessionFactory, dev_server_env: Any
) -> None:
    client = dev_server_env.client
    async with running_worker(client, sessions, test_settings()) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "vendor_due_diligence",
            data=VENDOR,
            started=worker.started_cases,
        )
        await wait_for(
            handle, lambda s: any(e.key == TASK and e.status == "active" for e in s.elements)
        )
        await mark_started(sessions, ref)
        maria = await console_as("maria")
        kofi = await console_as("kofi")
        take = f"take-{ref}-{TASK}"

        # the task waits in the case managers' queue, with a Take button
        await eventually(
            lambda: maria.client.get("/console/work"),
            lambda r: take in r.text,
            what=f"{ref}'s task in the team queue",
        )

        # maria takes it: back on My work, it is hers, with Complete and Release
        r = await maria.post_form(
            f"/console/cases/{ref}/assignment", mode="take", element=TASK, back="work"
        )
        assert r.headers["location"] == "/console/work"
        page = await follow(maria, r)
        assert any(f.endswith("taken by maria.") for f in flashes(page)), flashes(page)
        mine = section(page, "my-work")
        assert f'data-testid="mine-{ref}-{TASK}"' in mine
        assert f'data-testid="complete-{ref}-{TASK}"' in mine
        assert f'data-testid="release-{ref}-{TASK}"' in mine
        assert "<td>Assessment</td>" in mine  # the stage (this app has no fixture types)
        assert 'data-testid="work-sla"' in mine
        assert take not in page  # no longer in the queue

        # kofi tries to take it too: the case refuses (it is maria's), shown as a flash
        r = await kofi.post_form(
            f"/console/cases/{ref}/assignment", mode="take", element=TASK, back="work"
        )
        page = await follow(kofi, r)
        refusal = " ".join(flashes(page))
        assert "Not done:" in refusal and "held by maria" in refusal, refusal
        assert f'data-testid="mine-{ref}-{TASK}"' not in page

        # the case page says who holds what; a case manager may assign to eligible people only
        page = (await maria.client.get(f"/console/cases/{ref}")).text
        assert f'data-testid="held-by-{TASK}">Maria Case-Manager (maria)' in page
        assert 'data-testid="held-by-case"><span class="muted">Nobody' in page
        assign_task = form(page, f"assign-{ref}-{TASK}")
        assert 'value="kofi"' in assign_task and 'value="ada"' in assign_task
        assert 'value="rita"' not in assign_task  # the task is the case managers'
        assert 'value="maria"' not in assign_task  # she holds it already
        assert 'name="reason" placeholder="Reason (required)" required' in assign_task
        assign_case = form(page, f"assign-{ref}-case")
        assert 'value="rita"' in assign_case  # compliance may work in this stage
        assert 'value="ravi"' not in assign_case and 'value="olga"' not in assign_case
        assert f'data-testid="take-{ref}-case"' in page
        assert f'data-testid="release-{ref}-{TASK}"' in page
        # a reviewer sees who holds it, may take the case, but not the task; no Assign to
        rita = await console_as("rita")
        page = (await rita.client.get(f"/console/cases/{ref}")).text
        assert f'data-testid="take-{ref}-case"' in page
        assert f'data-testid="take-{ref}-{TASK}"' not in page
        assert f'data-testid="assign-{ref}-' not in page
        # moving it without a reason is refused by the case: a flash, not an error page
        r = await maria.post_form(
            f"/console/cases/{ref}/assignment", mode="assign", element=TASK, assignee="kofi"
        )
        assert r.headers["location"] == f"/console/cases/{ref}"
        refusal = " ".join(flashes(await follow(maria, r)))
        assert "Not done:" in refusal and "needs a reason" in refusal, refusal

        # with a reason, maria gives it to kofi from the case page: it is on his My work
        r = await maria.post_form(
            f"/console/cases/{ref}/assignment",
            mode="assign",
            element=TASK,
            assignee="kofi",
            reason="kofi knows this vendor",
        )
        assert any(f.endswith("moved to kofi.") for f in flashes(await follow(maria, r)))
        state = await snapshot(handle)
        assert next(e for e in state.elements if e.key == TASK).assignee == "kofi"
        page = (await kofi.client.get("/console/work")).text
        assert f'data-testid="complete-{ref}-{TASK}"' in section(page, "my-work")

        # kofi completes it from My work: gone from his list, done on the case
        r = await kofi.post_form(
            f"/console/cases/{ref}/tasks/{TASK}/complete", note="details on file", back="work"
        )
        assert r.headers["location"] == "/console/work"
        page = await follow(kofi, r)
        assert f"Task {TASK} completed." in flashes(page)
        assert f'data-testid="mine-{ref}-{TASK}"' not in page
        state = await wait_for(
            handle, lambda s: next(e for e in s.elements if e.key == TASK).status == "done"
        )
        assert next(e for e in state.elements if e.key == TASK).done_by == "kofi"


async def _started_and_taken(
    client: Any, sessions: SessionFactory, worker: Any, c: Console
) -> tuple[str, Any]:
    """A vendor case whose first task ``c``'s user took from the team queue."""
    ref, handle = await start(
        client,
        sessions,
        worker.task_queue,
        "vendor_due_diligence",
        data=VENDOR,
        started=worker.started_cases,
    )
    await wait_for(
        handle, lambda s: any(e.key == TASK and e.status == "active" for e in s.elements)
    )
    await mark_started(sessions, ref)
    await eventually(
        lambda: c.client.get("/console/work"),
        lambda r: f"take-{ref}-{TASK}" in r.text,
        what=f"{ref}'s task in the team queue",
    )
    r = await c.post_form(f"/console/cases/{ref}/assignment", mode="take", element=TASK)
    assert "taken by" in " ".join(flashes(await follow(c, r)))
    return ref, handle


async def test_a_proposed_move_is_applied_from_the_workload_page(
    console_as: Any, sessions: SessionFactory, dev_server_env: Any
) -> None:
    client = dev_server_env.client
    async with running_worker(client, sessions, test_settings()) as worker:
        maria = await console_as("maria")
        ref, handle = await _started_and_taken(client, sessions, worker, maria)
        move_id = await new_proposal(
            sessions,
            ref=ref,
            item=TASK,
            title="Collect the vendor's company details",
            from_person="maria",
            to="kofi",
        )
        page = (await maria.client.get("/console/workload")).text
        assert f'data-testid="apply-{move_id}"' in page
        r = await maria.post_form(f"/console/workload/moves/{move_id}/apply")
        assert r.headers["location"] == "/console/workload"
        page = await follow(maria, r)
        assert f"({ref}) from maria to kofi." in " ".join(flashes(page)), flashes(page)
        assert f'data-testid="proposal-{move_id}"' not in page
        state = await snapshot(handle)
        assert next(e for e in state.elements if e.key == TASK).assignee == "kofi"


async def _loads(c: Console, username: str) -> tuple[int, int]:
    page = (await c.client.get("/console/workload")).text
    found = re.search(rf'data-person="{username}" data-open="(\d+)" data-near-breach="(\d+)"', page)
    assert found, f"{username} is not on the workload page"
    return int(found.group(1)), int(found.group(2))


async def test_workload_page_counts_each_persons_items(
    console_as: Any, sessions: SessionFactory
) -> None:
    maria = await console_as("maria")
    before = await _loads(maria, "omar")
    # an engine case (read model only) that omar holds, near breach
    ref = await insert_case(
        sessions,
        prefix="WL",
        engine="case",
        case_type="vendor_due_diligence",
        stage="assessment",
        assignee="omar",
        assignee_team="compliance_reviewer",
        sla_state="at_risk",
    )
    try:
        assert await _loads(maria, "omar") == (before[0] + 1, before[1] + 1)
        page = (await maria.client.get("/console/workload")).text
        team = section(page, "workload-compliance_reviewer")
        assert "Omar Reviewer" in team and "Rita Reviewer" in team
        assert 'data-person="olga"' not in page  # operators watch; they hold no work
        assert 'data-testid="rebalance-form"' in page  # a case manager may run it
        # omar's My work lists it, with the near-breach marker
        omar = await console_as("omar")
        mine = section((await omar.client.get("/console/work")).text, "my-work")
        row = mine[mine.index(f'data-testid="mine-{ref}-case"') :]
        assert 'data-testid="near-breach"' in row.split("</tr>", 1)[0]
    finally:
        async with sessions.begin() as s:
            await s.execute(update(Case).where(Case.ref == ref).values(status="cancelled"))


async def test_rebalancing_is_for_case_managers(
    console_as: Any, sessions: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    olga = await console_as("olga")
    page = (await olga.client.get("/console/workload")).text
    assert "Team workload" in page and 'data-testid="rebalance-form"' not in page
    refused = await olga.post_form("/console/workload/rebalance")
    assert refused.status_code == 403
    assert "may not do this on team workload" in refused.text
    # her My work says operators hold no work, and offers nothing to take
    work = (await olga.client.get("/console/work")).text
    assert "it holds none" in work and 'data-testid="take-' not in work

    calls: list[str] = []

    async def ran(*, temporal: Any, settings: Any, caller: Any) -> RebalanceReport:
        calls.append(caller.label)
        return RebalanceReport(run_id=41, moved=1, proposed=2, refused=0)

    monkeypatch.setattr(work_service, "run_rebalancing", ran)
    maria = await console_as("maria")
    r = await maria.post_form("/console/workload/rebalance")
    assert r.headers["location"] == "/console/workload"
    assert "Rebalancing run 41: moved 1, proposed 2, refused 0." in flashes(await follow(maria, r))
    assert calls == ["maria"]

    async def unavailable(**_: Any) -> RebalanceReport:
        raise HTTPException(status_code=503, detail="the workflow service did not answer")

    monkeypatch.setattr(work_service, "run_rebalancing", unavailable)
    r = await maria.post_form("/console/workload/rebalance")
    page = await follow(maria, r)
    assert "Not done: the workflow service did not answer" in flashes(page)


async def test_a_proposal_is_dismissed_once(console_as: Any, sessions: SessionFactory) -> None:
    move_id = await new_proposal(
        sessions,
        ref="WL-NOSUCHCASE",
        item="case",
        title="case WL-NOSUCHCASE",
        from_person="kofi",
        to="maria",
    )
    olga = await console_as("olga")
    page = (await olga.client.get("/console/workload")).text
    assert f'data-testid="proposal-{move_id}"' in page  # she sees it ...
    assert f'data-testid="dismiss-{move_id}"' not in page  # ... but may not decide it
    assert (await olga.post_form(f"/console/workload/moves/{move_id}/dismiss")).status_code == 403

    maria = await console_as("maria")
    page = (await maria.client.get("/console/workload")).text
    assert f'data-testid="apply-{move_id}"' in page and f'data-testid="dismiss-{move_id}"' in page
    r = await maria.post_form(f"/console/workload/moves/{move_id}/dismiss")
    page = await follow(maria, r)
    assert "Dismissed: case WL-NOSUCHCASE (WL-NOSUCHCASE) stays with kofi." in flashes(page)
    assert f'data-testid="proposal-{move_id}"' not in page
    # deciding it again: the 409 is a flash
    r = await maria.post_form(f"/console/workload/moves/{move_id}/apply")
    assert "Not done: this proposal was already dismissed" in flashes(await follow(maria, r))
    # an unknown proposal: a 404 page
    missing = await maria.post_form("/console/workload/moves/abc/apply")
    assert missing.status_code == 404


async def test_assignment_form_problems_are_flashed(
    console_as: Any, sessions: SessionFactory
) -> None:
    ref = await insert_case(sessions, prefix="WA")
    maria = await console_as("maria")
    for fields, said in (
        ({}, "Choose take, assign or release."),
        ({"mode": "assign"}, "Choose the person to assign it to."),
        ({"mode": "take", "element": "Not A Key"}, "There is no such step."),
        ({"mode": "assign", "assignee": "nobody_here"}, "'nobody_here' is not a console user"),
    ):
        r = await maria.post_form(f"/console/cases/{ref}/assignment", **fields)
        assert r.headers["location"] == f"/console/cases/{ref}"
        shown = " ".join(flashes(await follow(maria, r)))
        assert said in shown, (fields, shown)
    # an operator may not assign work at all
    olga = await console_as("olga")
    r = await olga.post_form(f"/console/cases/{ref}/assignment", mode="take")
    assert r.status_code == 403
