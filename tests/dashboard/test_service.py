"""Every dashboard figure against answers worked out by hand from ``conftest.py``'s dataset.

p90 follows ``percentile_cont``: position 0.9 * (n - 1) in the sorted values, interpolated.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, update

from api.routes.dashboard import stage_order
from api.services.dashboard import Window, build_dashboard, default_range
from schemas.enums import ClientTier, ClientType
from store.cases import insert_draft_case
from store.db import SessionFactory
from store.models import Case, StageIntervalRow
from tests.conftest import new_ref
from tests.dashboard.conftest import FROM, TO, Seeded
from tests.engine.helpers import registry
from tests.factories import profile

approx = pytest.approx
ORDER = stage_order(registry(), None)  # the case types' declared order, onboarding first


async def test_stage_stats(sessions: SessionFactory, seeded: Seeded) -> None:
    async with sessions() as s:
        d = await build_dashboard(s, date_from=FROM, date_to=TO, stage_order=ORDER)
    stages = {st.stage: st for st in d.stages}
    # process order, only stages with visits that ended in the window
    assert [st.stage for st in d.stages] == [
        "document_collection",
        "compliance_review",
        "account_setup",
        "final_review",
    ]
    doc = stages["document_collection"]  # active 100, 200, 300, 400, 1000
    assert (doc.visits, doc.visits_with_sla, doc.within_sla, doc.breaches) == (5, 5, 3, 2)
    assert doc.sla_compliance_pct == approx(60.0)
    assert doc.escalations == 3
    assert doc.avg_active_seconds == approx(400.0)
    assert doc.p90_active_seconds == approx(400 + 0.6 * 600)  # position 3.6
    assert doc.total_active_seconds == approx(2000.0)

    comp = stages["compliance_review"]  # 50 met, 100 none, 150 met, 5000 breached
    assert (comp.visits, comp.visits_with_sla, comp.within_sla, comp.breaches) == (4, 3, 2, 1)
    assert comp.sla_compliance_pct == approx(200 / 3)
    assert comp.avg_active_seconds == approx(1325.0)
    assert comp.p90_active_seconds == approx(150 + 0.7 * 4850)  # position 2.7 -> 3545
    assert comp.total_active_seconds == approx(5300.0)

    setup = stages["account_setup"]  # 10, 30 (the one at the window's end is excluded)
    assert (setup.visits, setup.breaches, setup.sla_compliance_pct) == (2, 0, approx(100.0))
    assert setup.avg_active_seconds == approx(20.0)
    assert setup.p90_active_seconds == approx(28.0)
    assert setup.total_active_seconds == approx(40.0)

    final = stages["final_review"]  # one visit without an SLA
    assert (final.visits, final.visits_with_sla, final.sla_compliance_pct) == (1, 0, None)
    assert final.p90_active_seconds == approx(20.0)


async def test_bottlenecks(sessions: SessionFactory, seeded: Seeded) -> None:
    async with sessions() as s:
        d = await build_dashboard(s, date_from=FROM, date_to=TO, stage_order=ORDER)
    b = d.bottlenecks
    assert [(r.rank, r.stage, r.value) for r in b.by_active_time] == [
        (1, "compliance_review", 5300.0),
        (2, "document_collection", 2000.0),
        (3, "account_setup", 40.0),
        (4, "final_review", 20.0),
    ]
    # ties (0 breaches) fall back to process order
    assert [(r.stage, r.value) for r in b.by_breaches] == [
        ("document_collection", 2.0),
        ("compliance_review", 1.0),
        ("account_setup", 0.0),
        ("final_review", 0.0),
    ]
    assert b.dominant is None  # the slowest stage is not the most breached one


async def test_end_to_end_automation_nps(sessions: SessionFactory, seeded: Seeded) -> None:
    async with sessions() as s:
        d = await build_dashboard(s, date_from=FROM, date_to=TO, stage_order=ORDER)
    # completed and closed in the window: A 10 h, B 1 d, C 2 h, E 28 d (D rejected, F at the end)
    e2e = d.end_to_end
    assert e2e.completed_cases == 4
    assert e2e.avg_seconds == approx((36000 + 86400 + 7200 + 2419200) / 4)
    assert e2e.p90_seconds == approx(86400 + 0.7 * (2419200 - 86400))

    # closed in the window: A, B, C, D, E; automated: A (auto-approved) and E (only SLA events)
    a = d.automation
    assert (a.closed_cases, a.automated_cases, a.manual_cases) == (5, 2, 3)
    assert a.automation_rate_pct == approx(40.0)
    assert a.manual_share_pct == approx(60.0)

    # scores 10, 9, 8, 9, 3
    n = d.nps
    assert (n.responses, n.promoters, n.passives, n.detractors) == (5, 3, 1, 1)
    assert (n.promoters_pct, n.passives_pct, n.detractors_pct) == (
        approx(60.0),
        approx(20.0),
        approx(20.0),
    )
    assert n.nps == approx(40.0)


async def test_at_risk_now_ignores_window(sessions: SessionFactory, seeded: Seeded) -> None:
    r = seeded.refs
    async with sessions() as s:
        d = await build_dashboard(s, date_from=date(2040, 1, 1), date_to=date(2040, 1, 2))
    # our June 2031 cases are the newest in the database; J is on track, K is closed
    top = d.at_risk.cases[:3]
    assert [(c.ref, c.stage, c.sla_state, c.priority) for c in top] == [
        (r["I"], "compliance_review", "at_risk", "elevated"),
        (r["H"], "compliance_review", "warning", "normal"),
        (r["G"], "compliance_review", "breached", "high"),
    ]
    assert d.at_risk.total >= 3
    assert not {r["J"], r["K"]} & {c.ref for c in d.at_risk.cases}
    # the window is empty
    assert d.stages == [] and d.end_to_end.completed_cases == 0
    assert d.automation.automation_rate_pct is None and d.nps.nps is None


async def test_filters(sessions: SessionFactory, seeded: Seeded) -> None:
    r = seeded.refs
    async with sessions() as s:
        d = await build_dashboard(
            s,
            date_from=FROM,
            date_to=TO,
            client_type=ClientType.BUSINESS,
            tier=ClientTier.PREMIUM,
            stage_order=ORDER,
        )
    stages = {st.stage: st for st in d.stages}  # cases C and D only
    assert list(stages) == ["document_collection", "compliance_review", "account_setup"]
    assert (
        stages["document_collection"].sla_compliance_pct,
        stages["document_collection"].breaches,
    ) == (0.0, 1)
    comp = stages["compliance_review"]
    assert (comp.visits, comp.visits_with_sla, comp.sla_compliance_pct) == (2, 1, 100.0)
    assert comp.p90_active_seconds == approx(145.0)
    assert d.bottlenecks.dominant == "document_collection"
    assert (d.end_to_end.completed_cases, d.end_to_end.p90_seconds) == (1, approx(7200.0))
    assert (d.automation.closed_cases, d.automation.automation_rate_pct) == (2, 0.0)
    assert (d.nps.responses, d.nps.nps) == (2, approx(50.0))
    assert d.at_risk.cases[0].ref == r["G"]
    assert all(c.client_type == "business" and c.client_tier == "premium" for c in d.at_risk.cases)


def test_window_and_default_range() -> None:
    with pytest.raises(ValueError, match="before"):
        Window.from_dates(date(2031, 3, 2), date(2031, 3, 2))
    assert default_range(date(2031, 3, 31)) == (date(2031, 3, 2), date(2031, 4, 1))


async def test_any_case_type_and_stage_string(sessions: SessionFactory) -> None:
    """Stages are free strings: order_approval's stages come in its declared order, a stage
    no case type declares comes after them (by first appearance), and ``case_type`` keeps
    one type's cases only."""
    day = datetime(2041, 5, 10, 9, tzinfo=UTC)
    order_ref, other_ref = new_ref("DSO"), new_ref("DSX")
    async with sessions() as s:
        for ref, case_type in ((order_ref, "order_approval"), (other_ref, "client_onboarding")):
            await s.execute(insert_draft_case(ref=ref, client=profile(), requested_by="test"))
            await s.execute(
                update(Case).where(Case.ref == ref).values(case_type=case_type, status="open")
            )
        visits = [  # entered in an order unlike the declared one
            (order_ref, 1, "fulfilment", 0, "met"),
            (order_ref, 2, "hand_over", 1, "met"),  # a stage no case type declares
            (order_ref, 3, "approval", 2, "breached"),
            (order_ref, 4, "intake", 3, "met"),
            (other_ref, 1, "document_collection", 4, "met"),
        ]
        await s.execute(
            insert(StageIntervalRow),
            [
                {
                    "case_ref": ref,
                    "seq": seq,
                    "stage": stage,
                    "entered_at": day + timedelta(hours=hour),
                    "exited_at": day + timedelta(hours=hour, minutes=30),
                    "outcome": "completed",
                    "sla_budget_seconds": 3600.0,
                    "sla_outcome": outcome,
                    "active_seconds": 1800.0,
                    "paused_seconds": 0.0,
                    "escalations": 0,
                }
                for ref, seq, stage, hour, outcome in visits
            ],
        )
        await s.commit()
    date_from, date_to = date(2041, 5, 10), date(2041, 5, 11)
    try:
        async with sessions() as s:
            typed = await build_dashboard(
                s,
                date_from=date_from,
                date_to=date_to,
                case_type="order_approval",
                stage_order=stage_order(registry(), "order_approval"),
            )
        assert [st.stage for st in typed.stages] == [
            "intake",
            "approval",
            "fulfilment",
            "hand_over",
        ]
        assert typed.filters.case_type == "order_approval"
        assert {st.stage: st.breaches for st in typed.stages}["approval"] == 1
        async with sessions() as s:
            everything = await build_dashboard(
                s, date_from=date_from, date_to=date_to
            )  # no declared order: first seen
        assert [st.stage for st in everything.stages] == [
            "fulfilment",
            "hand_over",
            "approval",
            "intake",
            "document_collection",
        ]
    finally:
        async with sessions() as s:
            await s.execute(delete(Case).where(Case.ref.in_([order_ref, other_ref])))
            await s.commit()


async def test_engine_cases_count_their_time_to_resolution_not_to_closing(
    sessions: SessionFactory,
) -> None:
    """An engine case resolves when its work is done and closes days later (lifecycle): the
    onboarding time a team watches is created -> resolved."""
    created = datetime(2024, 2, 5, 9, tzinfo=UTC)
    ref = new_ref("E2E")
    async with sessions.begin() as s:
        await s.execute(
            insert_draft_case(ref=ref, client=profile(), requested_by="test", engine="case")
        )
        await s.execute(
            update(Case)
            .where(Case.ref == ref)
            .values(
                status="closed",
                resolution="completed",
                created_at=created,
                resolved_at=created + timedelta(days=2, hours=7),  # 2.3 days of work
                closed_at=created + timedelta(days=9, hours=7),  # closed 7 days later
            )
        )
    async with sessions() as s:
        d = await build_dashboard(
            s, date_from=date(2024, 2, 1), date_to=date(2024, 2, 28), stage_order=ORDER
        )
    assert d.end_to_end.completed_cases == 1
    assert d.end_to_end.avg_seconds == approx(timedelta(days=2, hours=7).total_seconds())
