"""The read model: what people query. Temporal stays the source of truth for where a case is.

Every write from the workflow is idempotent: intervals are keyed on (case_ref, seq), audit events
on (case_ref, event_key), accounts on case_ref, and case rows only move forward by
``projection_version``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Sequence,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
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
    stage: Mapped[str] = mapped_column(String(40), index=True)
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

    projection_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closure_reason: Mapped[str | None] = mapped_column(Text)


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
    stage: Mapped[str] = mapped_column(String(40))
    entered_at: Mapped[datetime] = _ts()
    exited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(32))
    sla_budget_seconds: Mapped[float | None] = mapped_column(Float)
    sla_outcome: Mapped[str | None] = mapped_column(String(16))
    active_seconds: Mapped[float | None] = mapped_column(Float)
    paused_seconds: Mapped[float | None] = mapped_column(Float)
    escalations: Mapped[int] = mapped_column(Integer, default=0)


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
    stage: Mapped[str] = mapped_column(String(40))
    paused_at: Mapped[datetime] = _ts()
    paused_by: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(Text)
    resumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resumed_by: Mapped[str | None] = mapped_column(String(120))
    resume_reason: Mapped[str | None] = mapped_column(Text)
