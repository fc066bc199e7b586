"""Recorded history: when an engine case ends (closed or cancelled), the read-model write that
says so also copies its finished stage visits into ``history_intervals`` (source
``recorded``), once, with the case's creation facts.

First through the projection activity itself (every mapping, replays, rebuilds), then with
real cases driven to their end on the time-skipping server.
"""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.engine_store import EngineStoreActivities
from schemas.case_state import StageVisit
from schemas.contracts import CasePatchV2, EngineProjection
from schemas.engine_commands import CancelCaseCmd, CommandResult
from schemas.history import read_csv
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.history import export_csv, record_closed_case
from store.models import Case, DocumentRow, HistoryInterval, StageIntervalRow
from tests.conftest import new_ref
from tests.engine.cleanup import engine_worker
from tests.engine.helpers import start, wait_for
from tests.engine.readmodel import eventually, visits
from tests.engine.test_lifecycle import STORE_CREDIT, resolve_return
from tests.factories import profile
from tests.history.helpers import case_type


# ------------------------------------------------------------------------- helpers
async def recorded(sessions: SessionFactory, ref: str) -> list[HistoryInterval]:
    async with sessions() as s:
        rows = await s.scalars(
            select(HistoryInterval)
            .where(HistoryInterval.case_ref == ref)
            .order_by(HistoryInterval.entered_at)
        )
        return list(rows)


async def new_case(
    sessions: SessionFactory, case_type: str = "order_approval", **client: Any
) -> tuple[str, datetime]:
    """An engine case row as the API inserts it; its ref and created_at."""
    ref = new_ref("R")
    async with sessions.begin() as s:
        await s.execute(
            insert_draft_case(
                ref=ref,
                client=profile(**client),
                requested_by="test",
                case_type=case_type,
                case_type_version="2026.11.1",
                engine="case",
                data={},
                workflow_id=f"case-{ref}",
                first_stage="intake",
                access_roles=["sales_ops"],
            )
        )
    async with sessions() as s:
        created = await s.scalar(select(Case.created_at).where(Case.ref == ref))
    assert created is not None
    return ref, created


async def upload(sessions: SessionFactory, ref: str, at: datetime) -> None:
    doc_id = f"doc_{uuid.uuid4().hex[:26]}"
    async with sessions.begin() as s:
        s.add(
            DocumentRow(
                id=doc_id,
                case_ref=ref,
                kind="passport",
                filename="passport.pdf",
                content_type="application/pdf",
                size=1234,
                sha256=uuid.uuid4().hex * 2,
                storage_key=f"cases/{ref}/{doc_id}",
                uploaded_by="client",
                uploaded_at=at,
            )
        )


def project(
    ref: str, version: int, status: str, visits: list[StageVisit], **kw: Any
) -> EngineProjection:
    return EngineProjection(
        case_ref=ref,
        version=version,
        at=visits[-1].exited_at or visits[-1].entered_at,
        case=CasePatchV2(status=status, stage=visits[-1].stage),
        visits=visits,
        **kw,
    )


async def apply(store: EngineStoreActivities, p: EngineProjection) -> bool:
    return (await ActivityEnvironment().run(store.project, p)).written


def visit(seq: int, stage: str, at: datetime, outcome: str | None, **kw: Any) -> StageVisit:
    """Visit ``seq`` entered at ``at``, lasting ``seq`` hours (unfinished without outcome)."""
    exited = at + timedelta(hours=seq) if outcome else None
    return StageVisit(seq=seq, stage=stage, entered_at=at, exited_at=exited, outcome=outcome, **kw)


# ------------------------------------------------------------------------- projections
async def test_a_closed_case_is_recorded_once_with_its_creation_facts(sessions):
    store = EngineStoreActivities(sessions, None, None)
    ref, created = await new_case(
        sessions,
        client_type="business",
        tier="premium",
        country="fr",
        regulatory_requirements=["fatca", "mifid-ii"],
    )
    await upload(sessions, ref, created + timedelta(minutes=9))  # within the first 10 minutes
    t = created + timedelta(minutes=1)
    history = [
        visit(1, "intake", t, "completed", sla_outcome="met"),
        visit(2, "review", t + timedelta(hours=1), "sent_back", sla_outcome="breached"),
        visit(3, "intake", t + timedelta(hours=3), "reopened"),
        visit(4, "review", t + timedelta(hours=6), "resolved", sla_outcome="warned"),
    ]
    # open, then resolved: nothing is history yet
    assert await apply(store, project(ref, 1, "open", history[:2]))
    assert await apply(store, project(ref, 2, "resolved", history))
    assert await recorded(sessions, ref) == []

    assert await apply(store, project(ref, 3, "closed", history))
    rows = await recorded(sessions, ref)
    assert [(r.stage, r.entered_at, r.exited_at, r.outcome, r.breached) for r in rows] == [
        ("intake", history[0].entered_at, history[0].exited_at, "completed", False),
        ("review", history[1].entered_at, history[1].exited_at, "sent_back", True),
        ("intake", history[2].entered_at, history[2].exited_at, "completed", False),
        ("review", history[3].entered_at, history[3].exited_at, "completed", False),
    ]
    for row in rows:
        assert (row.case_type, row.client_type, row.tier, row.country) == (
            "order_approval",
            "business",
            "premium",
            "FR",
        )
        assert row.service_requirements == ["fatca", "mifid_ii"]
        assert row.documents_submitted_at_creation is True
        assert row.created_at == created
        assert row.source == "recorded"

    # a replay, a rebuild (onboarding reproject) and a direct call add nothing
    assert not await apply(store, project(ref, 3, "closed", history))
    assert await apply(store, project(ref, 3, "closed", history, rebuild=True))
    async with sessions.begin() as s:
        assert await record_closed_case(s, ref) == 0
    assert [r.id for r in await recorded(sessions, ref)] == [r.id for r in rows]


async def test_a_cancelled_case_is_recorded_and_late_documents_do_not_count(sessions):
    store = EngineStoreActivities(sessions, None, None)
    ref, created = await new_case(sessions)
    await upload(sessions, ref, created + timedelta(minutes=11))  # after the first 10 minutes
    t = created + timedelta(minutes=1)
    history = [
        visit(1, "intake", t, "completed"),
        visit(2, "review", t + timedelta(hours=1), "cancelled", sla_outcome="breached"),
    ]
    assert await apply(store, project(ref, 1, "cancelled", history))
    rows = await recorded(sessions, ref)
    assert [(r.stage, r.outcome, r.breached) for r in rows] == [
        ("intake", "completed", False),
        ("review", "cancelled", True),
    ]
    assert {r.documents_submitted_at_creation for r in rows} == {False}
    assert {tuple(r.service_requirements) for r in rows} == {()}
    assert {(r.client_type, r.tier, r.country) for r in rows} == {("individual", "standard", "GB")}


@pytest.mark.parametrize("again_version", [1, 2], ids=["same version", "next version"])
async def test_a_later_write_of_the_same_end_corrects_the_recorded_times(sessions, again_version):
    """A workflow task that failed after its local activity wrote the end runs again at a
    later workflow time: the recorded visit follows that newer write, still one row. The run
    again sends the version it sent before (its state is the last completed task's), so the
    case row does not move; the visits and the history still follow (CI caught this)."""
    store = EngineStoreActivities(sessions, None, None)
    ref, created = await new_case(sessions)
    t = created + timedelta(minutes=1)
    first = [visit(1, "intake", t, "completed"), visit(2, "review", t, "cancelled")]
    assert await apply(store, project(ref, 1, "cancelled", first))
    assert first[1].exited_at is not None
    later = first[1].exited_at + timedelta(milliseconds=46)
    again = [first[0], visit(2, "review", t, "cancelled")]
    again[1].exited_at = later
    moved = await apply(store, project(ref, again_version, "cancelled", again))
    assert moved is (again_version == 2)  # the same version leaves the case row alone
    rows = await recorded(sessions, ref)
    assert [(r.stage, r.exited_at) for r in rows] == [
        ("intake", first[0].exited_at),
        ("review", later),
    ]
    intervals = {v.stage: v.exited_at for v in await visits(sessions, ref)}
    assert intervals["review"] == later  # the read model and the history agree


async def test_a_later_write_that_moves_a_start_replaces_the_recorded_visit(sessions):
    """The task run again also entered the last stage later (entered and ended in that one
    task): the history holds that visit once, at its new times, not beside the old row."""
    store = EngineStoreActivities(sessions, None, None)
    ref, created = await new_case(sessions)
    t = created + timedelta(minutes=1)
    first = [visit(1, "intake", t, "completed"), visit(2, "review", t, "cancelled")]
    assert await apply(store, project(ref, 1, "cancelled", first))
    later = t + timedelta(milliseconds=46)
    again = [first[0], visit(2, "review", later, "cancelled")]
    await apply(store, project(ref, 1, "cancelled", again))  # the same version, run again
    rows = await recorded(sessions, ref)
    assert [(r.stage, r.entered_at, r.exited_at) for r in rows] == [
        ("intake", t, first[0].exited_at),
        ("review", later, again[1].exited_at),
    ]


async def test_only_finished_visits_are_history_and_the_rows_read_back_as_a_clean_csv(sessions):
    store = EngineStoreActivities(sessions, None, None)
    ctype = case_type()
    ref, created = await new_case(sessions, ctype)
    early = created - timedelta(seconds=2)  # the workflow entered its stage before the row
    history = [visit(1, "intake", early, "completed"), visit(2, "review", created, None)]
    assert await apply(store, project(ref, 1, "closed", history))
    rows = await recorded(sessions, ref)
    assert [r.stage for r in rows] == ["intake"]
    assert rows[0].created_at == early  # never after the first visit: the format forbids it

    async with sessions() as s:
        buffer = io.StringIO()
        assert await export_csv(s, buffer, case_type=ctype) == 1
    buffer.seek(0)
    intervals, problems = read_csv(buffer)
    assert problems == []
    assert [(i.case_ref, i.stage, i.created_at) for i in intervals] == [(ref, "intake", early)]


# ------------------------------------------------------------------------- real cases
async def _compare(sessions: SessionFactory, ref: str) -> list[HistoryInterval]:
    """The recorded rows, once they are there, against the case's stage intervals.

    Both are read until they agree: a workflow task that runs again after its local activity
    wrote a stage's end writes that end once more at a later time, and the rows and the read
    model are two reads that may straddle that correction (it happened in CI)."""

    async def both() -> tuple[list[HistoryInterval], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        rows = await recorded(sessions, ref)
        read_model: list[StageIntervalRow] = [v for v in await visits(sessions, ref) if v.exited_at]
        history = [(r.stage, r.entered_at, r.exited_at, r.breached) for r in rows]
        intervals = [
            (v.stage, v.entered_at, v.exited_at, v.sla_outcome == "breached") for v in read_model
        ]
        return rows, history, intervals

    rows, _, _ = await eventually(
        both, lambda got: len(got[0]) > 0 and got[1] == got[2], what="the history to match"
    )
    assert {r.source for r in rows} == {"recorded"}
    return rows


async def test_a_real_case_closed_after_close_after_is_recorded_once(time_skipping_env, sessions):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "return_request",
            data=STORE_CREDIT,
            started=worker.started_cases,
        )
        await resolve_return(handle)
        assert await recorded(sessions, ref) == []  # resolved is not the end
        await time_skipping_env.sleep(timedelta(days=7, minutes=1))
        await wait_for(handle, lambda s: s.status == "closed")
        await handle.result()
    rows = await _compare(sessions, ref)
    assert rows[-1].outcome == "completed"
    assert {(r.case_type, r.client_type, r.tier, r.country) for r in rows} == {
        ("return_request", "individual", "standard", "GB")
    }
    async with sessions.begin() as s:
        assert await record_closed_case(s, ref) == 0
    assert len(await recorded(sessions, ref)) == len(rows)


async def test_a_real_cancelled_case_is_recorded(time_skipping_env, sessions):
    client = time_skipping_env.client
    async with engine_worker(client, sessions) as worker:
        ref, handle = await start(
            client,
            sessions,
            worker.task_queue,
            "return_request",
            data=STORE_CREDIT,
            started=worker.started_cases,
        )
        await wait_for(handle, lambda s: s.stage == "review")
        await handle.execute_update(
            "cancel",
            CancelCaseCmd(actor="ops", role="admin", closure_code="other", reason="duplicate"),
            result_type=CommandResult,
        )
        await handle.result()
    rows = await _compare(sessions, ref)
    assert rows[-1].stage == "review" and rows[-1].outcome == "cancelled"
