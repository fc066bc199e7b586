"""engine_project_case against real Postgres: one transaction, idempotent, never wedges a case.

A projection whose *data* Postgres refuses (a NUL byte, a lone surrogate, a value too long, a
missing case row) is dead-lettered and reported, not raised: a retry could never succeed and
would stall the case. A database that is down raises, so Temporal retries.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from temporalio.testing import ActivityEnvironment

from activities.engine_store import EngineStoreActivities, describe_error, is_data_error
from schemas.case_state import ElementState, ElementStatus, PauseRecord, StageVisit
from schemas.contracts import CasePatchV2, EngineSeed
from schemas.projection import AuditEvent
from store.db import make_engine, make_session_factory
from store.models import Case, CaseEvent, CasePauseRow, CaseTaskRow, StageIntervalRow
from tests.conftest import new_ref
from tests.engine_store.conftest import T0, dead_letters, engine_case, projection
from tests.factories import profile


async def run(store: EngineStoreActivities, p):
    return await ActivityEnvironment().run(store.project, p)


async def rows(sessions, model, ref: str) -> list:
    async with sessions() as s:
        return list(await s.scalars(select(model).where(model.case_ref == ref).order_by(model.id)))


async def case_row(sessions, ref: str) -> Case:
    async with sessions() as s:
        row = await s.get(Case, ref)
        assert row is not None
        return row


# ------------------------------------------------------------------ writes
async def test_projection_writes_the_case_row_and_every_keyed_table(sessions, store):
    ref = await engine_case(sessions)

    result = await run(store, projection(ref, 1))

    assert result.written and not result.dead_lettered
    case = await case_row(sessions, ref)
    assert (case.status, case.stage, case.sla_state) == ("open", "manager_approval", "on_track")
    assert case.flags == ["large_order"]
    assert case.access_roles == ["sales_ops", "finance"]
    assert case.projection_version == 1 and case.updated_at == T0 + timedelta(minutes=1)
    assert (case.engine, case.case_type, case.case_type_version) == (
        "case",
        "order_approval",
        "2026.11.1",
    )
    assert case.data == {"order_total": 1200}

    intervals = await rows(sessions, StageIntervalRow, ref)
    assert [(i.seq, i.stage, i.outcome) for i in intervals] == [
        (1, "intake", "completed"),
        (2, "manager_approval", None),
    ]
    assert intervals[1].sla_budget_seconds == 3600
    [pause] = await rows(sessions, CasePauseRow, ref)
    assert (pause.stage, pause.paused_by, pause.reason) == ("manager_approval", "ops", "stock")

    tasks = {t.key: t for t in await rows(sessions, CaseTaskRow, ref)}
    approve = tasks["approve_order"]
    assert (approve.kind, approve.element_kind, approve.status) == ("manual", "approval", "active")
    assert approve.done is False and approve.assignee_role == "sales_manager"
    assert approve.required == 2 and approve.due_at == T0 + timedelta(hours=4)
    assert approve.votes == [
        {"actor": "mia", "decision": "approve", "at": "2026-11-23T09:00:00Z", "reason_code": None,
         "note": None}
    ]  # fmt: skip
    stock = tasks["check_stock"]
    assert (stock.kind, stock.status, stock.done, stock.done_at) == ("auto", "done", True, T0)
    assert stock.outcome == "in stock"
    packing = tasks["packing_list"]
    assert (packing.kind, packing.status, packing.done) == ("manual", "skipped", True)
    assert packing.ticked == {"labels": "ops"} and packing.overdue is True
    assert packing.done_by == "ops"

    [event] = await rows(sessions, CaseEvent, ref)
    assert (event.event_key, event.kind, event.occurred_at) == (
        "stage-entered-1",
        "stage_entered",
        T0 + timedelta(minutes=1),
    )


async def test_same_version_twice_writes_once(sessions, store):
    ref = await engine_case(sessions)

    first = await run(store, projection(ref, 1))
    second = await run(store, projection(ref, 1))

    assert first.written and not second.written and not second.dead_lettered
    assert len(await rows(sessions, StageIntervalRow, ref)) == 2
    assert len(await rows(sessions, CasePauseRow, ref)) == 1
    assert len(await rows(sessions, CaseTaskRow, ref)) == 3
    assert len(await rows(sessions, CaseEvent, ref)) == 1
    assert (await case_row(sessions, ref)).projection_version == 1


async def test_an_event_keeps_the_time_it_happened_not_the_time_it_was_written(sessions, store):
    """A busy outbox writes a projection late (and merges older ones into it): an event that
    says when it happened is recorded then, one that does not takes the projection's time."""
    ref = await engine_case(sessions)
    fired = T0 - timedelta(minutes=11)
    events = [
        AuditEvent(key="sla_warning-1", kind="sla_warning", at=fired),
        AuditEvent(key="note-1", kind="note"),
    ]

    await run(store, projection(ref, 1, events=events))

    when = {e.event_key: e.occurred_at for e in await rows(sessions, CaseEvent, ref)}
    assert when == {"sla_warning-1": fired, "note-1": T0 + timedelta(minutes=1)}


async def test_an_older_version_never_overwrites_a_newer_one(sessions, store):
    ref = await engine_case(sessions)
    newer = projection(
        ref,
        2,
        case=CasePatchV2(status="resolved", stage="fulfilment", resolution="approved"),
        visits=[
            StageVisit(
                seq=2,
                stage="manager_approval",
                entered_at=T0,
                exited_at=T0 + timedelta(hours=1),
                outcome="completed",
                sla_outcome="met",
            )
        ],
        pauses=[
            PauseRecord(
                seq=1,
                stage="manager_approval",
                paused_at=T0,
                paused_by="ops",
                reason="stock",
                resumed_at=T0 + timedelta(minutes=5),
                resumed_by="ops",
            )
        ],
        elements=[
            ElementState(
                key="approve_order",
                kind="approval",
                stage="manager_approval",
                title="Approve the order",
                status=ElementStatus.DONE,
                done_by="mia",
                finished_at=T0 + timedelta(hours=1),
            )
        ],
    )
    assert (await run(store, newer)).written

    late = await run(store, projection(ref, 1))  # a retried sync arriving after version 2

    assert not late.written and not late.dead_lettered
    case = await case_row(sessions, ref)
    assert (case.status, case.stage, case.resolution) == ("resolved", "fulfilment", "approved")
    assert case.projection_version == 2 and case.updated_at == T0 + timedelta(minutes=2)
    visits = {v.seq: v for v in await rows(sessions, StageIntervalRow, ref)}
    assert visits[2].outcome == "completed" and visits[2].sla_outcome == "met"
    assert visits[1].stage == "intake", "rows only the older projection had are still added"
    [pause] = await rows(sessions, CasePauseRow, ref)
    assert pause.resumed_at == T0 + timedelta(minutes=5)
    tasks = {t.key: t for t in await rows(sessions, CaseTaskRow, ref)}
    assert tasks["approve_order"].status == "done" and tasks["approve_order"].done
    assert {"check_stock", "packing_list"} <= tasks.keys()
    assert {e.event_key for e in await rows(sessions, CaseEvent, ref)} == {
        "stage-entered-1",
        "stage-entered-2",
    }


async def test_a_seed_creates_the_row_of_a_case_nobody_inserted(sessions, store):
    ref = new_ref("SEED")
    seed = EngineSeed(
        client=profile(),
        case_type="return_request",
        case_type_version="v3",
        workflow_id=f"case-{ref}",
        requested_by="parent-case",
        data={"order_ref": "O-1"},
        first_stage="intake",
        access_roles=["support"],
    )

    result = await run(store, projection(ref, 1, seed=seed, case=CasePatchV2(status="open")))
    again = await run(store, projection(ref, 1, seed=seed, case=CasePatchV2(status="open")))

    assert result.written and not again.written and not again.dead_lettered
    case = await case_row(sessions, ref)
    assert (case.engine, case.case_type, case.case_type_version) == ("case", "return_request", "v3")
    assert (case.workflow_id, case.stage, case.status) == (f"case-{ref}", "intake", "open")
    assert case.data == {"order_ref": "O-1"} and case.requested_by == "parent-case"
    assert len(await rows(sessions, StageIntervalRow, ref)) == 2


# ------------------------------------------------------------------ dead letters
def _pause(reason: str) -> PauseRecord:
    return PauseRecord(seq=1, stage="s", paused_at=T0, paused_by="ops", reason=reason)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(
            {"events": [AuditEvent(key="note", kind="note", detail={"t": "a\x00b"})]},
            id="nul-in-event-detail",
        ),
        pytest.param({"pauses": [_pause("Ada Lovelace\x00")]}, id="nul-in-pause-reason"),
        pytest.param({"pauses": [_pause("Ada Lovelace\ud800")]}, id="lone-surrogate"),
        pytest.param({"case": CasePatchV2(stage="s" * 61)}, id="stage-too-long"),
    ],
)
async def test_a_data_error_is_dead_lettered_and_a_later_good_projection_still_writes(
    sessions, store, bad, caplog
):
    ref = await engine_case(sessions)
    caplog.set_level(logging.ERROR)

    result = await run(store, projection(ref, 1, **bad))

    assert result.dead_lettered and not result.written
    case = await case_row(sessions, ref)
    if "case" in bad:  # nothing to clean: the write is refused as a whole
        assert case.projection_version == 0 and case.status == "draft", "rolled back as a whole"
        assert await rows(sessions, StageIntervalRow, ref) == []
        assert await rows(sessions, CaseTaskRow, ref) == []
    else:  # bad text: the same rows, cleaned, keep the read model current
        assert case.projection_version == 1 and case.status != "draft"
        assert len(await rows(sessions, CaseTaskRow, ref)) == 3
        reasons = [p.reason for p in await rows(sessions, CasePauseRow, ref)]
        assert not any("\x00" in r or "\ud800" in r for r in reasons)
        if "pauses" in bad:
            assert any(r.startswith("Ada Lovelace") for r in reasons)
    [letter] = await dead_letters(sessions, ref)
    assert letter.version == 1 and letter.resolved_at is None and letter.created_at is not None
    assert "sqlstate=22" in letter.error
    assert letter.payload.isascii()
    payload = json.loads(letter.payload)
    assert payload["case_ref"] == ref and payload["version"] == 1
    assert payload == projection(ref, 1, **bad).model_dump(mode="json")
    [record] = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert f"projection dead-lettered case={ref} version=1 error=" in message
    assert "Ada" not in message and "\x00" not in message, "the payload is never logged"

    good = await run(store, projection(ref, 2))

    assert good.written and not good.dead_lettered
    assert (await case_row(sessions, ref)).projection_version == 2
    assert len(await rows(sessions, CaseTaskRow, ref)) == 3
    assert len(await dead_letters(sessions, ref)) == 1


async def test_a_projection_for_a_missing_case_row_is_dead_lettered(sessions, store):
    ref = new_ref("GONE")

    result = await run(store, projection(ref, 1))

    assert result.dead_lettered and not result.written
    [letter] = await dead_letters(sessions, ref)
    assert letter.error.startswith("CaseRowMissing")


async def test_a_database_that_is_down_raises_so_temporal_retries(tmp_path):
    engine = make_engine(f"postgresql+asyncpg://postgres@/nowhere?host={tmp_path}", pool_size=1)
    try:
        down = EngineStoreActivities(make_session_factory(engine))
        with pytest.raises((OSError, OperationalError, DBAPIError)) as raised:
            await run(down, projection("E-DOWN", 1))
        assert not is_data_error(raised.value)
    finally:
        await engine.dispose()


def test_triage_of_errors():
    assert is_data_error(ValueError("bad value"))
    assert is_data_error(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    assert not is_data_error(TimeoutError())
    assert not is_data_error(ConnectionResetError())
    assert not is_data_error(OperationalError("SELECT 1", {}, Exception("server closed")))
    assert not is_data_error(RuntimeError("a bug"))
    text = describe_error(UnicodeEncodeError("utf-8", "x\ud800\x00", 1, 2, "surrogates"))
    assert text.isascii() and "\x00" not in text
