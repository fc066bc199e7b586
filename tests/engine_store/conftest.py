"""Engine read-model fixtures: an engine case row, projections, and delivery stand-ins."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from activities.engine_store import EngineStoreActivities
from integrations.sendgrid_email import SendGridEmailSender
from schemas.case_state import ElementState, ElementStatus, PauseRecord, StageVisit, Vote
from schemas.contracts import CasePatchV2, EngineProjection
from schemas.projection import AuditEvent
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import ProjectionDeadLetter
from tests.compliance.conftest import fixture_screener, receiver  # noqa: F401 - fixtures
from tests.conftest import new_ref
from tests.factories import profile
from tests.standins.sendgrid_standin import SendGridStandin, running_sendgrid_standin

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SG_KEY = "SG.engine-store-test-key.0123456789"


async def engine_case(sessions: SessionFactory, **overrides: Any) -> str:
    """A case row as the API inserts it before starting ``CaseWorkflow``."""
    ref = new_ref("E")
    fields: dict[str, Any] = {
        "case_type": "order_approval",
        "case_type_version": "2026.11.1",
        "engine": "case",
        "workflow_id": f"case-{ref}",
        "first_stage": "intake",
        "data": {"order_total": 1200},
        "access_roles": ["sales_ops"],
    }
    fields.update(overrides)
    async with sessions.begin() as session:
        await session.execute(
            insert_draft_case(ref=ref, client=profile(), requested_by="test", **fields)
        )
    return ref


def projection(ref: str, version: int, **overrides: Any) -> EngineProjection:
    """A realistic projection: a case patch, a visit, a pause, three kinds of element, events."""
    fields: dict[str, Any] = {
        "case_ref": ref,
        "version": version,
        "at": T0 + timedelta(minutes=version),
        "case": CasePatchV2(
            status="open",
            stage="manager_approval",
            sla_state="on_track",
            flags=["large_order"],
            access_roles=["sales_ops", "finance"],
        ),
        "visits": [
            StageVisit(seq=1, stage="intake", entered_at=T0, exited_at=T0, outcome="completed"),
            StageVisit(seq=2, stage="manager_approval", entered_at=T0, sla_budget_seconds=3600),
        ],
        "pauses": [
            PauseRecord(
                seq=1, stage="manager_approval", paused_at=T0, paused_by="ops", reason="stock"
            )
        ],
        "elements": [
            ElementState(
                key="approve_order",
                kind="approval",
                stage="manager_approval",
                title="Approve the order",
                status=ElementStatus.ACTIVE,
                assignee_role="sales_manager",
                opened_at=T0,
                due_at=T0 + timedelta(hours=4),
                required=2,
                votes=[Vote(actor="mia", decision="approve", at=T0)],
            ),
            ElementState(
                key="check_stock",
                kind="automation",
                stage="manager_approval",
                title="Check stock",
                status=ElementStatus.DONE,
                finished_at=T0,
                outcome="in stock",
            ),
            ElementState(
                key="packing_list",
                kind="checklist",
                stage="manager_approval",
                title="Packing list",
                status=ElementStatus.SKIPPED,
                ticked={"labels": "ops"},
                done_by="ops",
                finished_at=T0,
                overdue=True,
            ),
        ],
        "events": [AuditEvent(key=f"stage-entered-{version}", kind="stage_entered")],
    }
    fields.update(overrides)
    return EngineProjection(**fields)


async def dead_letters(sessions: SessionFactory, ref: str) -> list[ProjectionDeadLetter]:
    async with sessions() as s:
        query = select(ProjectionDeadLetter).where(ProjectionDeadLetter.case_ref == ref)
        return list(await s.scalars(query.order_by(ProjectionDeadLetter.id)))


@pytest.fixture
def store(sessions: SessionFactory) -> EngineStoreActivities:
    return EngineStoreActivities(sessions, None, None)


@pytest.fixture
def sendgrid() -> Iterator[SendGridStandin]:
    with running_sendgrid_standin(api_key=SG_KEY) as standin:
        yield standin


@pytest.fixture
def email_sender(sendgrid: SendGridStandin) -> SendGridEmailSender:
    return SendGridEmailSender(
        SG_KEY, "onboarding@bank.example", "Northbridge", host=sendgrid.base_url, timeout=5
    )
