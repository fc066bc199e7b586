"""Every dashboard figure against answers worked out by hand from ``conftest.py``'s dataset.

p90 follows ``percentile_cont``: position 0.9 * (n - 1) in the sorted values, interpolated.
"""

from __future__ import annotations

from datetime import date

import pytest

from api.services.dashboard import Window, build_dashboard, default_range
from schemas.enums import ClientTier, ClientType
from store.db import SessionFactory
from tests.dashboard.conftest import FROM, TO, Seeded

approx = pytest.approx


async def test_stage_stats(sessions: SessionFactory, seeded: Seeded) -> None:
    async with sessions() as s:
        d = await build_dashboard(s, date_from=FROM, date_to=TO)
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
        d = await build_dashboard(s, date_from=FROM, date_to=TO)
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
        d = await build_dashboard(s, date_from=FROM, date_to=TO)
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
