"""Chart geometry: thresholds, scaling and labels, without a database."""

from __future__ import annotations

from api.services.dashboard import StageStats, rank_bottlenecks
from api.web import dashboard_charts as charts


def stage(
    name: str, pct: float | None, avg: float, p90: float, total: float, **kw: int
) -> StageStats:
    return StageStats(
        stage=name,
        visits=4,
        visits_with_sla=0 if pct is None else 4,
        within_sla=0,
        sla_compliance_pct=pct,
        breaches=kw.get("breaches", 0),
        escalations=0,
        avg_active_seconds=avg,
        p90_active_seconds=p90,
        total_active_seconds=total,
        time_rank=kw.get("time_rank", 1),
        breach_rank=kw.get("breach_rank", 1),
    )


def test_thresholds_and_durations() -> None:
    assert [charts.compliance_class(p) for p in (100, 95, 94.9, 80, 79.9, None)] == [
        "good", "good", "warn", "warn", "bad", "none",
    ]  # fmt: skip
    assert charts.humanize_seconds(None) == "-"
    assert charts.humanize_seconds(59) == "59 s"
    assert charts.humanize_seconds(600) == "10 min"
    assert charts.humanize_seconds(5400) == "1.5 h"
    assert charts.humanize_seconds(3 * 86400) == "3.0 d"
    assert charts.stage_label("document_collection") == "Document collection"


def test_bars_scale_and_label() -> None:
    stages = [
        stage("compliance_review", 50.0, 100, 400, 1000, time_rank=1, breach_rank=2),
        stage("final_review", None, 50, 200, 500, time_rank=2, breach_rank=1, breaches=3),
    ]
    comp = charts.compliance_chart(stages)
    full = charts.WIDTH - charts.LABEL_W - charts.VALUE_W
    bar = comp.rows[0].bars[0]
    assert (bar.width, bar.css, bar.value_text) == (full / 2, "bad", "50.0%")
    assert comp.rows[1].bars == [] and comp.rows[1].note == "no SLA"

    time = charts.time_chart(stages)
    avg, p90 = time.rows[0].bars
    assert p90.width == full and avg.width == full / 4  # one scale: the largest p90
    assert p90.value_text == "p90 7 min"

    ranking = rank_bottlenecks(stages)
    by_breaches = charts.ranking_chart(
        ranking.by_breaches, ident="x", title="t", desc="d", unit="count"
    )
    assert [r.label for r in by_breaches.rows] == ["1. Final review", "2. Compliance review"]
    assert by_breaches.rows[0].bars[0].css == "rank-top"
    assert ranking.dominant is None
