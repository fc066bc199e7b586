"""case history and learned models

``history_intervals``: one row per stage interval of a finished case, recorded when an engine
case closes or imported from a previous system (``onboarding history import``); unique on
(case_ref, stage, entered_at), so an import is idempotent. ``learned_models``: versioned,
stored fits (the ETA model, the breach model) with their training summary.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "history_intervals",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("case_ref", sa.String(64), nullable=False),
        sa.Column("case_type", sa.String(60), nullable=False),
        sa.Column("client_type", sa.String(60), nullable=False),
        sa.Column("tier", sa.String(60), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("service_requirements", postgresql.JSONB(), server_default=sa.text("'[]'"),
                  nullable=False),
        sa.Column("documents_submitted_at_creation", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("stage", sa.String(60), nullable=False),
        sa.Column("entered_at", TS, nullable=False),
        sa.Column("exited_at", TS, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("loaded_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_intervals")),
        sa.UniqueConstraint("case_ref", "stage", "entered_at", name="uq_history_intervals_visit"),
    )
    op.create_index("ix_history_intervals_type_created", "history_intervals",
                    ["case_type", "created_at"])
    op.create_table(
        "learned_models",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("fitted_at", TS, nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("summary", postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learned_models")),
        sa.UniqueConstraint("kind", "version", name="uq_learned_models_kind_version"),
    )


def downgrade() -> None:
    op.drop_table("learned_models")
    op.drop_index("ix_history_intervals_type_created", table_name="history_intervals")
    op.drop_table("history_intervals")
