"""Geometry for the dashboard's server-side SVG charts.

The page must work offline and without JavaScript, so charts are plain SVG drawn by the
template. This module only computes positions, labels and colour classes (pure and easy to
test); the template turns them into markup, so Jinja's autoescaping covers every label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from api.services.dashboard import RankedStage, StageStats

# SLA compliance colour thresholds (percent): at or above GOOD is green, at or above WARN amber
GOOD_PCT = 95.0
WARN_PCT = 80.0

WIDTH = 680
LABEL_W = 170  # stage names, right-aligned against the bars
VALUE_W = 90  # value text after the longest bar
TOP = 8
ROW = 30
BAR_H = 18


@dataclass(frozen=True)
class Bar:
    """One bar; ``title`` is its tooltip and accessible name."""

    x: float
    y: float
    width: float
    height: float
    css: str
    value_text: str
    title: str


@dataclass(frozen=True)
class Row:
    """One labelled row of one or more bars."""

    label: str
    label_y: float
    bars: list[Bar]
    note: str | None = None  # shown instead of bars (e.g. "no SLA")


@dataclass(frozen=True)
class Chart:
    """A horizontal bar chart with its accessible title and description."""

    ident: str
    title: str
    desc: str
    width: int
    height: int
    label_w: int
    rows: list[Row]
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css class, text)
    gridlines: list[tuple[float, str]] = field(default_factory=list)  # (x, label)


def stage_label(stage: str) -> str:
    """``document_collection`` -> ``Document collection``."""
    return stage.replace("_", " ").capitalize()


def humanize_seconds(seconds: float | None) -> str:
    """A duration people read at a glance: 45 s, 12 min, 3.5 h, 2.1 d."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def compliance_class(pct: float | None) -> str:
    """Colour class by threshold; the value is always printed too, so colour is not the only
    cue."""
    if pct is None:
        return "none"
    if pct >= GOOD_PCT:
        return "good"
    if pct >= WARN_PCT:
        return "warn"
    return "bad"


def _plot_w(width: int, label_w: int) -> float:
    return float(width - label_w - VALUE_W)


def compliance_chart(stages: Sequence[StageStats]) -> Chart:
    """SLA compliance % by stage, bars scaled to 100%."""
    plot = _plot_w(WIDTH, LABEL_W)
    rows: list[Row] = []
    for i, st in enumerate(stages):
        y = TOP + i * ROW
        name = stage_label(st.stage)
        pct = st.sla_compliance_pct
        if pct is None:
            rows.append(Row(label=name, label_y=y + BAR_H / 2, bars=[], note="no SLA"))
            continue
        text = f"{pct:.1f}%"
        rows.append(
            Row(
                label=name,
                label_y=y + BAR_H / 2,
                bars=[
                    Bar(
                        x=LABEL_W,
                        y=y,
                        width=max(plot * pct / 100.0, 1.0),
                        height=BAR_H,
                        css=compliance_class(pct),
                        value_text=text,
                        title=(
                            f"{name}: {text} within SLA "
                            f"({st.within_sla} of {st.visits_with_sla} visits, "
                            f"{st.breaches} breached)"
                        ),
                    )
                ],
            )
        )
    grid = [(LABEL_W + plot * p / 100.0, f"{p}%") for p in (0, 25, 50, 75, 100)]
    return Chart(
        ident="chart-compliance",
        title="SLA compliance by stage",
        desc=(
            "Share of stage visits with an SLA that finished met or warned. "
            f"Green at or above {GOOD_PCT:.0f}%, amber at or above {WARN_PCT:.0f}%, red below."
        ),
        width=WIDTH,
        height=TOP + max(len(rows), 1) * ROW + 22,
        label_w=LABEL_W,
        rows=rows,
        legend=[
            ("good", f"≥ {GOOD_PCT:.0f}%"),
            ("warn", f"≥ {WARN_PCT:.0f}%"),
            ("bad", f"< {WARN_PCT:.0f}%"),
        ],
        gridlines=grid,
    )


def time_chart(stages: Sequence[StageStats]) -> Chart:
    """Average vs p90 active time per stage, two bars per stage on a shared scale."""
    plot = _plot_w(WIDTH, LABEL_W)
    top_value = max(
        (max(st.p90_active_seconds or 0.0, st.avg_active_seconds or 0.0) for st in stages),
        default=0.0,
    )
    scale = plot / top_value if top_value > 0 else 0.0
    row_h, bar_h = 40, 15
    rows: list[Row] = []
    for i, st in enumerate(stages):
        y = TOP + i * row_h
        name = stage_label(st.stage)
        bars = []
        for j, (kind, css, value) in enumerate(
            (("average", "avg", st.avg_active_seconds), ("p90", "p90", st.p90_active_seconds))
        ):
            text = humanize_seconds(value)
            bars.append(
                Bar(
                    x=LABEL_W,
                    y=y + j * (bar_h + 2),
                    width=max((value or 0.0) * scale, 1.0),
                    height=bar_h,
                    css=css,
                    value_text=f"{kind} {text}",
                    title=f"{name}: {kind} active time {text}",
                )
            )
        rows.append(Row(label=name, label_y=y + bar_h + 1, bars=bars))
    return Chart(
        ident="chart-time",
        title="Active time per stage: average vs 90th percentile",
        desc="Working time per stage visit, excluding paused time, on one shared scale.",
        width=WIDTH,
        height=TOP + max(len(rows), 1) * row_h + 8,
        label_w=LABEL_W,
        rows=rows,
        legend=[("avg", "average"), ("p90", "90th percentile")],
    )


def ranking_chart(
    entries: Sequence[RankedStage], *, ident: str, title: str, desc: str, unit: str
) -> Chart:
    """A ranking (already ordered by SQL) as bars scaled to the top entry."""
    plot = _plot_w(WIDTH, LABEL_W)
    top_value = max((e.value for e in entries), default=0.0)
    rows: list[Row] = []
    for i, e in enumerate(entries):
        y = TOP + i * ROW
        name = f"{e.rank}. {stage_label(e.stage)}"
        text = humanize_seconds(e.value) if unit == "seconds" else f"{e.value:.0f}"
        rows.append(
            Row(
                label=name,
                label_y=y + BAR_H / 2,
                bars=[
                    Bar(
                        x=LABEL_W,
                        y=y,
                        width=max(plot * e.value / top_value, 1.0) if top_value > 0 else 1.0,
                        height=BAR_H,
                        css="rank-top" if i == 0 and e.value > 0 else "rank",
                        value_text=text,
                        title=f"{name}: {text}",
                    )
                ],
            )
        )
    return Chart(
        ident=ident,
        title=title,
        desc=desc,
        width=WIDTH,
        height=TOP + max(len(rows), 1) * ROW + 4,
        label_w=LABEL_W,
        rows=rows,
    )


def all_charts(
    stages: Sequence[StageStats], by_time: Sequence[RankedStage], by_breaches: Sequence[RankedStage]
) -> list[Chart]:
    """The page's charts in display order."""
    return [
        compliance_chart(stages),
        time_chart(stages),
        ranking_chart(
            by_time,
            ident="chart-rank-time",
            title="Bottlenecks: total active time by stage",
            desc="Stages ordered by the working time all their visits added up to.",
            unit="seconds",
        ),
        ranking_chart(
            by_breaches,
            ident="chart-rank-breaches",
            title="Bottlenecks: SLA breaches by stage",
            desc="Stages ordered by how many of their visits breached the SLA.",
            unit="count",
        ),
    ]
