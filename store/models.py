"""The read model: what people query. Temporal stays the source of truth for where a case is.

Every write from the workflow is idempotent: intervals are keyed on (case_ref, seq), audit events
on (case_ref, event_key), accounts on case_ref, and case rows only move forward by
``projection_version``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSONB, list[str]: JSONB}


def _ts() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False)


class Case(Base):
    __tablename__ = "cases"

    ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(100), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(40))

    status: Mapped[str] = mapped_column(String(32), index=True)
    stage: Mapped[str] = mapped_column(String(60), index=True)
    sla_state: Mapped[str | None] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    ever_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    playbook_version: Mapped[str | None] = mapped_column(String(64))
    flags: Mapped[list[str]] = mapped_column(default=list)

    client_name: Mapped[str] = mapped_column(String(200))
    client_email: Mapped[str] = mapped_column(String(320))
    client_phone: Mapped[str | None] = mapped_column(String(20))
    client_type: Mapped[str] = mapped_column(String(20), index=True)
    client_tier: Mapped[str] = mapped_column(String(20), index=True)
    country: Mapped[str] = mapped_column(String(2))
    profile: Mapped[dict[str, Any]] = mapped_column()

    # Which engine owns the case: rows from before the engine are cases of the frozen
    # onboarding workflow ('onboarding-v1'); the engine writes 'case'.
    case_type: Mapped[str] = mapped_column(
        String(60), index=True, default="client_onboarding", server_default="client_onboarding"
    )
    case_type_version: Mapped[str | None] = mapped_column(String(64))
    engine: Mapped[str] = mapped_column(
        String(20), default="onboarding-v1", server_default="onboarding-v1"
    )
    access_roles: Mapped[list[str]] = mapped_column(default=list, server_default=text("'[]'"))
    resolution: Mapped[str | None] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))

    projection_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closure_reason: Mapped[str | None] = mapped_column(Text)
    # engine cases: when the work was done (they close days later, see lifecycle.close_after)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # work queues: who is working the case (a console username), their role, since when
    assignee: Mapped[str | None] = mapped_column(String(120), index=True)
    assignee_team: Mapped[str | None] = mapped_column(String(60))
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sla_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # engine
    # when the case should be done (estimate_eta: learned from history, or the budgets)
    eta_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    eta_p10_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    eta_p90_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    eta_basis: Mapped[str | None] = mapped_column(String(20))


class StageIntervalRow(Base):
    """One visit of one stage, with its SLA outcome once it closes (the dashboard's fact table)."""

    __tablename__ = "stage_intervals"
    __table_args__ = (
        UniqueConstraint("case_ref", "seq", name="uq_stage_intervals_case_seq"),
        Index("ix_stage_intervals_stage_entered", "stage", "entered_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.ref", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(60))
    entered_at: Mapped[datetime] = _ts()
    exited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(32))
    sla_budget_seconds: Mapped[float | None] = mapped_column(Float)
    sla_outcome: Mapped[str | None] = mapped_column(String(16))
    active_seconds: Mapped[float | None] = mapped_column(Float)
    paused_seconds: Mapped[float | None] = mapped_column(Float)
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    # Engine cases only: the projection version that last wrote the row (older never wins).
    projection_version: Mapped[int | None] = mapped_column(Integer)


class CaseEvent(Base):
    """Audit trail: who did what to a case, and what automation did."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_ref", "event_key", name="uq_case_events_case_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.ref", ondelete="CASCADE"), index=True)
    event_key: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(120))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = _ts()


ACCOUNT_NUMBER_SEQ = Sequence("account_number_seq", start=10_000_001)


class Account(Base):
    """The account provisioned for a case: at most one per case, numbers never collide."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.ref"), unique=True)
    account_number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(20))  # open / closed
    opened_at: Mapped[datetime] = _ts()
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_reason: Mapped[str | None] = mapped_column(Text)


class CasePauseRow(Base):
    """Manual-intervention pauses: who stopped automation, why, and for how long."""

    __tablename__ = "case_pauses"
    __table_args__ = (UniqueConstraint("case_ref", "seq", name="uq_case_pauses_case_seq"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.ref", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(60))
    paused_at: Mapped[datetime] = _ts()
    paused_by: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(Text)
    resumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resumed_by: Mapped[str | None] = mapped_column(String(120))
    resume_reason: Mapped[str | None] = mapped_column(Text)
    projection_version: Mapped[int | None] = mapped_column(Integer)  # engine cases only


class DocumentRow(Base):
    """An uploaded client document. The bytes live in the blob store under ``storage_key``."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("case_ref", "sha256", name="uq_documents_case_sha256"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.ref", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    issued_on: Mapped[date | None] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    uploaded_by: Mapped[str] = mapped_column(String(120))
    uploaded_at: Mapped[datetime] = _ts()
    status: Mapped[str] = mapped_column(String(20), default="received")  # received/accepted/…
    status_detail: Mapped[str | None] = mapped_column(Text)
    # what reading the file found (migration 0015): the verdict, its findings, the reading
    verdict: Mapped[str | None] = mapped_column(String(20))
    verdict_reasons: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'")
    )
    reading: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ScreeningRow(Base):
    """One sanctions/PEP screening of a case's client, kept for audit with the list version."""

    __tablename__ = "screenings"
    __table_args__ = (
        UniqueConstraint("case_ref", "attempt_key", name="uq_screenings_case_attempt"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.ref", ondelete="CASCADE"), index=True)
    attempt_key: Mapped[str] = mapped_column(String(80))
    decision: Mapped[str] = mapped_column(String(20))
    score: Mapped[float] = mapped_column(Float)
    list_version: Mapped[str] = mapped_column(String(300))
    hits: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    risk_level: Mapped[str] = mapped_column(String(10))
    risk_score: Mapped[int] = mapped_column(Integer)
    risk_factors: Mapped[list[str]] = mapped_column(default=list)
    screened_at: Mapped[datetime] = _ts()
    # the score at which a hit was a potential match (0014; NULL for older screenings)
    threshold: Mapped[float | None] = mapped_column(Float)


# --------------------------------------------------------------------------- sanctions monitoring
# Migration 0014; docs/sanctions-monitoring.md. store/sanctions.py reads and writes them.
class SanctionsListVersion(Base):
    """One version of the sanctions lists that was loaded, and the re-screen it started."""

    __tablename__ = "sanctions_list_versions"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    loaded_at: Mapped[datetime] = _ts()
    loaded_by: Mapped[str] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(Text)
    files: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    entry_count: Mapped[int] = mapped_column(Integer)
    rescreen_workflow_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))  # loaded / rescreening / rescreened
    totals: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    rescreened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SanctionsAlert(Base):
    """A client who matched a list entry on a re-screen: one per (client, entry, entry
    content), so an unchanged entry never alerts twice and a changed one alerts again."""

    __tablename__ = "sanctions_alerts"
    __table_args__ = (
        UniqueConstraint(
            "client_case_ref", "entry_id", "entry_hash", name="uq_sanctions_alerts_client_entry"
        ),
        CheckConstraint("status IN ('open', 'cleared', 'escalated')", name="status"),
    )

    alert_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    client_case_ref: Mapped[str] = mapped_column(ForeignKey("cases.ref", ondelete="CASCADE"))
    client_name: Mapped[str] = mapped_column(String(200))
    list_version: Mapped[str] = mapped_column(String(64))
    list_name: Mapped[str] = mapped_column(String(40))
    entry_id: Mapped[str] = mapped_column(String(120))
    entry_hash: Mapped[str] = mapped_column(String(64))
    matched_name: Mapped[str] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    breakdown: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    explanation: Mapped[str | None] = mapped_column(Text)
    rescreen_workflow_id: Mapped[str | None] = mapped_column(String(200))
    alert_case_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default="open", server_default="open")
    decided_by: Mapped[str | None] = mapped_column(String(120))
    reason_code: Mapped[str | None] = mapped_column(String(60))
    reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookDeliveryRow(Base):
    """Delivery log of outbound webhooks; ``dead_letter`` once the retry budget is spent."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(120), unique=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.ref", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(60))
    url: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(20))  # pending / delivered / dead_letter
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _ts()
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NotificationRow(Base):
    """The outbox: one row per (case, milestone, occurrence, channel), so nothing sends twice.

    In-app notifications are rows here too (channel ``in_app``), read by the client portal.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("outbox_key", name="uq_notifications_outbox_key"),
        Index("ix_notifications_case_created", "case_ref", "created_at"),
        Index("ix_notifications_milestone_variant", "milestone", "variant"),
        Index("ix_notifications_provider_message_id", "provider_message_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    outbox_key: Mapped[str] = mapped_column(String(200))
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.ref", ondelete="CASCADE"))
    milestone: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))
    audience: Mapped[str] = mapped_column(String(20), default="client")  # client / staff
    recipient: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # queued/sent/failed/fallback/local_outbox
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_message_id: Mapped[str | None] = mapped_column(String(120))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _ts()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the provider took it; while ``sending``/``checking``: when that hand-over began."""
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # two-way channels: what the provider told us later (events, callbacks)
    delivery_state: Mapped[str | None] = mapped_column(String(20))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    clicked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bounced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # the NotifyInput: fallback
    variant: Mapped[str | None] = mapped_column(String(40))  # A/B template variant
    contact_id: Mapped[int | None] = mapped_column(BigInteger)  # an additional contact's copy


class CallbackTaskRow(Base):
    """A phone callback owed to a (premium) client, assigned to the relationship manager."""

    __tablename__ = "callback_tasks"
    __table_args__ = (UniqueConstraint("case_ref", "stage", name="uq_callback_tasks_case_stage"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.ref", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(60))
    assignee_role: Mapped[str] = mapped_column(String(40), default="relationship_manager")
    due_at: Mapped[datetime] = _ts()
    status: Mapped[str] = mapped_column(String(20), default="open")  # open / done
    created_at: Mapped[datetime] = _ts()
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_by: Mapped[str | None] = mapped_column(String(120))


class CaseTaskRow(Base):
    """Tasks of a case as the workflow sees them, for "my tasks" queues. The workflow owns
    them; this is its projection.

    Engine cases project every element of the current stage visit here (``ElementState``):
    ``kind`` is then ``manual`` for the kinds people act on and ``auto`` otherwise, and
    ``element_kind`` is the element's own kind. The frozen workflow leaves those columns NULL.
    """

    __tablename__ = "case_tasks"
    __table_args__ = (
        UniqueConstraint("case_ref", "key", name="uq_case_tasks_case_key"),
        Index("ix_case_tasks_open_by_role", "assignee_role", "done"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.ref", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(10))
    assignee_role: Mapped[str | None] = mapped_column(String(40))
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    done_by: Mapped[str | None] = mapped_column(String(120))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    element_kind: Mapped[str | None] = mapped_column(String(30))
    status: Mapped[str | None] = mapped_column(String(20))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    required: Mapped[int | None] = mapped_column(Integer)
    votes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    ticked: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    projection_version: Mapped[int | None] = mapped_column(Integer)  # engine cases only
    # work queues (engine cases): who holds the step, and every role that may act on it
    assignee: Mapped[str | None] = mapped_column(String(120), index=True)
    assignee_team: Mapped[str | None] = mapped_column(String(60))
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    roles: Mapped[list[str] | None] = mapped_column(JSONB)
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NpsResponse(Base):
    """One Net Promoter Score answer per case, given through the portal after welcome."""

    __tablename__ = "nps_responses"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.ref", ondelete="CASCADE"), unique=True)
    score: Mapped[int] = mapped_column(
        Integer, CheckConstraint("score BETWEEN 0 AND 10", name="score_range")
    )
    comment: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = _ts()


class ProjectionDeadLetter(Base):
    """An engine projection the read model refused (a data error): kept, alerted, never retried.

    No foreign key: the case row itself may be what failed. ``payload`` is the projection as
    ASCII-only JSON, so NUL bytes and lone surrogates survive as escapes.
    """

    __tablename__ = "projection_dead_letters"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_ref: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConsoleCredential(Base):
    """A console password hash upgraded at sign-in (``CONSOLE_USERS`` lives in the
    environment, which the app cannot rewrite). ``source_fingerprint`` is the SHA-256 of the
    configured hash it replaced: once an admin changes that hash, the row no longer counts."""

    __tablename__ = "console_credentials"

    username: Mapped[str] = mapped_column(String(120), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    source_fingerprint: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RebalanceRun(Base):
    """One workload rebalancing run (the schedule's, or one started by hand)."""

    __tablename__ = "rebalance_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_key: Mapped[str] = mapped_column(String(200), unique=True)  # the run's workflow id
    trigger: Mapped[str] = mapped_column(String(20))  # schedule | manual
    requested_by: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime] = _ts()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    moved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    proposed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    refused: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    teams: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))


class RebalanceMove(Base):
    """One piece of work a run moved (``moved``), or proposed to move (``proposed``, then
    ``applied`` or ``dismissed`` by a person), or could not move (``refused``, ``stale``)."""

    __tablename__ = "rebalance_moves"
    __table_args__ = (
        UniqueConstraint("run_id", "case_ref", "item", name="uq_rebalance_moves_run_item"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("rebalance_runs.id", ondelete="CASCADE"))
    team: Mapped[str] = mapped_column(String(60))
    case_ref: Mapped[str] = mapped_column(String(64))
    item: Mapped[str] = mapped_column(String(60))  # "case" or the element key
    title: Mapped[str] = mapped_column(String(200))
    from_person: Mapped[str] = mapped_column(String(120))
    to_person: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(20), index=True)
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _ts()
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(120))


class DeliveryEvent(Base):
    """What a provider told us about a message later (SendGrid events, Twilio status
    callbacks); idempotent on the provider's own event id."""

    __tablename__ = "delivery_events"
    __table_args__ = (
        UniqueConstraint("provider", "event_id", name="uq_delivery_events_provider_event"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(200))
    notification_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    outbox_key: Mapped[str | None] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(30))
    occurred_at: Mapped[datetime] = _ts()
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))


class InboundMessage(Base):
    """An email or SMS a client (or a stranger) sent us: attached to a case, quarantined for
    review, or a consent keyword. Idempotent on the provider's message id."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_id", name="uq_inbound_messages_channel_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(10))  # email | sms
    provider_id: Mapped[str] = mapped_column(String(300))  # Message-ID | MessageSid
    case_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    sender: Mapped[str] = mapped_column(String(320))
    recipient: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'")
    )
    received_at: Mapped[datetime] = _ts()
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(120))


class ChannelConsent(Base):
    """Whether an address (an E.164 number for SMS) has opted out of a channel (STOP/START)."""

    __tablename__ = "channel_consents"

    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    opted_out: Mapped[bool] = mapped_column(Boolean)
    keyword: Mapped[str | None] = mapped_column(String(20))
    source: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = _ts()


class CaseContact(Base):
    """An additional contact on a case (ServiceNow: additional contacts): someone at the
    client in a role (legal, finance, ...) who receives that role's milestones."""

    __tablename__ = "case_contacts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.ref", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(20))
    role: Mapped[str] = mapped_column(String(60))
    milestones: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default=text("'[]'"))
    created_at: Mapped[datetime] = _ts()
    created_by: Mapped[str] = mapped_column(String(120))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HistoryInterval(Base):
    """One stage interval of a finished case: recorded when an engine case closes, or
    imported (``schemas.history`` is the CSV format). What ETA, breach prediction and what-if
    learn from."""

    __tablename__ = "history_intervals"
    __table_args__ = (
        UniqueConstraint("case_ref", "stage", "entered_at", name="uq_history_intervals_visit"),
        Index("ix_history_intervals_type_created", "case_type", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_ref: Mapped[str] = mapped_column(String(64))
    case_type: Mapped[str] = mapped_column(String(60))
    client_type: Mapped[str] = mapped_column(String(60))
    tier: Mapped[str] = mapped_column(String(60))
    country: Mapped[str] = mapped_column(String(2))
    service_requirements: Mapped[list[str]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'")
    )
    documents_submitted_at_creation: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = _ts()
    stage: Mapped[str] = mapped_column(String(60))
    entered_at: Mapped[datetime] = _ts()
    exited_at: Mapped[datetime] = _ts()
    outcome: Mapped[str] = mapped_column(String(20))
    breached: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(20))  # recorded | imported
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LearnedModel(Base):
    """A versioned fit (``kind``: eta | breach) with what it was trained on."""

    __tablename__ = "learned_models"
    __table_args__ = (UniqueConstraint("kind", "version", name="uq_learned_models_kind_version"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    version: Mapped[str] = mapped_column(String(40))
    fitted_at: Mapped[datetime] = _ts()
    cases: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    blob: Mapped[bytes] = mapped_column(LargeBinary)


# --------------------------------------------------------------------------- dashboard roll-up
# Migration 0013; store/dashboard_rollup.py keeps them, api/services/dashboard.py reads them.
class DashboardStageTotals(Base):
    """Running totals, up to and including ``day``, of one segment's visits of one stage;
    ``counts[i]`` is how many had active seconds in bucket ``first_bucket + i - 1``
    (``dashboard_bucket``). ``first_entered_at`` is the day's own: the earliest entry of a
    visit that ended on it (NULL: none did)."""

    __tablename__ = "dashboard_stage_totals"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    case_type: Mapped[str] = mapped_column(String(60), primary_key=True)
    client_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    tier: Mapped[str] = mapped_column(String(20), primary_key=True)
    stage: Mapped[str] = mapped_column(String(60), primary_key=True)
    visits: Mapped[int] = mapped_column(BigInteger)
    visits_with_sla: Mapped[int] = mapped_column(BigInteger)
    within_sla: Mapped[int] = mapped_column(BigInteger)
    breaches: Mapped[int] = mapped_column(BigInteger)
    escalations: Mapped[int] = mapped_column(BigInteger)
    active_n: Mapped[int] = mapped_column(BigInteger)
    active_sum: Mapped[float] = mapped_column(Float)
    first_bucket: Mapped[int] = mapped_column(Integer)
    counts: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    first_entered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DashboardCaseTotals(Base):
    """Running totals, up to and including ``day``, of one segment's closed cases and NPS
    answers; ``counts``: completed cases by bucket of their seconds."""

    __tablename__ = "dashboard_case_totals"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    case_type: Mapped[str] = mapped_column(String(60), primary_key=True)
    client_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    tier: Mapped[str] = mapped_column(String(20), primary_key=True)
    closed_cases: Mapped[int] = mapped_column(BigInteger)
    automated_cases: Mapped[int] = mapped_column(BigInteger)
    completed_cases: Mapped[int] = mapped_column(BigInteger)
    completed_seconds: Mapped[float] = mapped_column(Float)
    nps_promoters: Mapped[int] = mapped_column(BigInteger)
    nps_passives: Mapped[int] = mapped_column(BigInteger)
    nps_detractors: Mapped[int] = mapped_column(BigInteger)
    first_bucket: Mapped[int] = mapped_column(Integer)
    counts: Mapped[list[int]] = mapped_column(ARRAY(Integer))


class DashboardValue(Base):
    """The seconds behind the bucket counts (metric ``stage_active``: visits' active seconds
    by stage; ``case_seconds``: completed cases', stage ''), ``n`` times each, findable by
    bucket: the exact p90 reads one bucket's values here."""

    __tablename__ = "dashboard_values"

    metric: Mapped[str] = mapped_column(String(20), primary_key=True)
    stage: Mapped[str] = mapped_column(String(60), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True, index=True)  # refresh: by day
    case_type: Mapped[str] = mapped_column(String(60), primary_key=True)
    client_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    tier: Mapped[str] = mapped_column(String(20), primary_key=True)
    seconds: Mapped[float] = mapped_column(Float, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class DashboardRollupState(Base):
    """The roll-up's watermark: every UTC day before ``rolled_until`` is rolled up."""

    __tablename__ = "dashboard_rollup_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rolled_until: Mapped[date] = mapped_column(Date)
    refreshed_at: Mapped[datetime] = _ts()


class DashboardRollupDirty(Base):
    """A UTC day whose facts changed after it was rolled up (written by triggers, 0013)."""

    __tablename__ = "dashboard_rollup_dirty"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    marked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
