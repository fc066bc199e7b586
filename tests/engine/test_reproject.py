"""``onboarding reproject``: the read model is rebuilt from the workflows themselves."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from cli.reproject import reproject
from schemas.snapshot import CaseSnapshot
from store.models import Case, CaseTaskRow, ProjectionDeadLetter
from tests.conftest import running_worker
from tests.engine.helpers import start, wait_for

ORDER = {"order_id": "PO-RP-1", "order_value": 75000, "currency": "EUR", "items": 4}


def _approval_open(s: CaseSnapshot) -> bool:
    return any(e.key == "group_approval" and e.status == "active" for e in s.elements)


async def test_reproject_rebuilds_a_damaged_case_row_and_resolves_its_dead_letters(
    time_skipping_env, sessions
):
    client = time_skipping_env.client
    async with running_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "order_approval",
            data=ORDER,
            started=worker.started_cases,
        )
        live = await wait_for(handle, _approval_open)
        # damage: the row forgot where the case is, its elements are gone, a dead letter waits
        async with sessions.begin() as s:
            await s.execute(
                update(Case).where(Case.ref == ref).values(stage="intake", status="draft")
            )
            await s.execute(delete(CaseTaskRow).where(CaseTaskRow.case_ref == ref))
            s.add(ProjectionDeadLetter(case_ref=ref, version=1, error="test", payload="{}"))

        report = await reproject(temporal=client, sessions=sessions, refs=[ref, "NOPE-123"])
        await check_rebuilt(sessions, ref, live, report)


async def check_rebuilt(sessions, ref, live, report) -> None:
    assert report.rebuilt == [ref]
    assert report.skipped == {"NOPE-123": "no such case in the read model"}
    async with sessions() as s:
        row = await s.get(Case, ref)
        assert row is not None
        assert (row.status, row.stage) == (live.status, "approval")
        assert row.access_roles == live.access
        keys = set(
            (await s.scalars(select(CaseTaskRow.key).where(CaseTaskRow.case_ref == ref))).all()
        )
        assert keys == {e.key for e in live.elements}  # the current stage's elements
        assert "group_approval" in keys
        letters = (
            await s.scalars(
                select(ProjectionDeadLetter).where(ProjectionDeadLetter.case_ref == ref)
            )
        ).all()
        assert [letter.resolved_at is not None for letter in letters] == [True]


async def test_reproject_leaves_frozen_cases_alone(time_skipping_env, sessions):
    from schemas.enums import Stage
    from tests.factories import start_case, wait_for_state

    async with running_worker(time_skipping_env.client, sessions) as worker:
        ref, handle = await start_case(time_skipping_env, worker)
        await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
        report = await reproject(temporal=time_skipping_env.client, sessions=sessions, refs=[ref])
    assert report.rebuilt == []
    assert "frozen" in report.skipped[ref]
