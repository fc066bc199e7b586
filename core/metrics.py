"""The worker's application metrics, recorded through the Temporal SDK's metric meter.

They leave the worker on the same Prometheus endpoint as the SDK's own metrics
(``WORKER_METRICS_ADDRESS``, ``core/telemetry.py``): one scrape target per worker. Each
counter is counted where the fact becomes true, once: in the activity that writes it
(``activities/engine_store.py`` for stage entries and exits, SLA warnings, breaches and
escalations, and dead letters, from the rows a projection newly inserted; notifications at
each send's outcome; screenings when their row is first stored). The activity's meter adds
``namespace``, ``task_queue`` and ``activity_type``. Outside an activity (a CLI rebuild,
a unit test) nothing is recorded.

Counter names are given without ``_total``: the Prometheus exporter appends it
(``counters_total_suffix``), so ``onboarding_sla_breaches`` is scraped as
``onboarding_sla_breaches_total``. docs/observability.md lists every metric.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.common import MetricMeter

STAGE_ENTRIES = "onboarding_stage_entries"
STAGE_EXITS = "onboarding_stage_exits"
SLA_WARNINGS = "onboarding_sla_warnings"
SLA_BREACHES = "onboarding_sla_breaches"
SLA_ESCALATIONS = "onboarding_sla_escalations"
DEAD_LETTERS = "onboarding_projection_dead_letters"
NOTIFICATIONS = "onboarding_notifications"
SCREENINGS = "onboarding_screenings"
SCREENING_HITS = "onboarding_screening_hits"

DESCRIPTIONS = {
    STAGE_ENTRIES: "Stage visits opened",
    STAGE_EXITS: "Stage visits closed, by outcome and SLA outcome",
    SLA_WARNINGS: "Stage SLA warnings raised",
    SLA_BREACHES: "Stage SLAs breached",
    SLA_ESCALATIONS: "Stage SLA escalations (each level once)",
    DEAD_LETTERS: "Read-model projections the database refused (dead-lettered)",
    NOTIFICATIONS: "Notification deliveries by channel and outcome",
    SCREENINGS: "Sanctions screenings stored, by decision",
    SCREENING_HITS: "Sanctions screenings with a potential match (re-screening: new alerts)",
}

SLA_EVENT_COUNTERS = {
    "sla_warning": SLA_WARNINGS,
    "sla_breached": SLA_BREACHES,
    "sla_escalated": SLA_ESCALATIONS,
}
"""Audit event kind -> the counter it feeds (the event's ``detail.stage`` is the label)."""
STAGE_ENTERED_EVENT = "stage_entered"


def meter() -> MetricMeter:
    """The current activity's meter, or a no-op one outside an activity."""
    if activity.in_activity():
        try:
            return activity.metric_meter()
        except RuntimeError:  # a non-threaded sync activity: no cross-process metrics
            return MetricMeter.noop
    return MetricMeter.noop


def count(name: str, value: int = 1, **labels: str | None) -> None:
    """Add ``value`` to the counter ``name`` with these labels (``None`` is ``"none"``)."""
    if value <= 0:
        return
    counter = meter().create_counter(name, DESCRIPTIONS.get(name), "1")
    counter.add(value, {key: "none" if v is None else str(v) for key, v in labels.items()})
