"""case engine

The read model for the case engine beside the frozen onboarding workflow:

- ``cases`` learns its case type (and version), which engine owns it, who may see it, how it
  was resolved and its case data. Existing rows are cases of the frozen workflow, so the
  server defaults describe them: ``client_onboarding`` run by ``onboarding-v1``.
- every ``stage`` column widens to 60 characters: case types name their own stages.
- ``case_tasks`` holds the engine's elements (``ElementState``) too.
- ``stage_intervals``, ``case_pauses`` and ``case_tasks`` remember the projection version that
  last wrote a row, so a late, older engine projection never overwrites a newer one.
- ``projection_dead_letters``: projections the read model refused (data errors), kept for
  an operator instead of being retried for ever.

Widening a varchar is a catalogue-only change in Postgres (no table rewrite); adding a
nullable column, or one with a constant default, is too.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAGE_TABLES = ("cases", "stage_intervals", "case_pauses", "case_tasks", "callback_tasks")
VERSIONED_TABLES = ("stage_intervals", "case_pauses", "case_tasks")
TASK_COLUMNS = (
    "element_kind",
    "status",
    "due_at",
    "outcome",
    "note",
    "required",
    "votes",
    "ticked",
    "overdue",
)


def upgrade() -> None:
    op.add_column(
        "cases",
        sa.Column(
            "case_type",
            sa.String(length=60),
            server_default="client_onboarding",
            nullable=False,
        ),
    )
    op.add_column("cases", sa.Column("case_type_version", sa.String(length=64), nullable=True))
    op.add_column(
        "cases",
        sa.Column("engine", sa.String(length=20), server_default="onboarding-v1", nullable=False),
    )
    op.add_column(
        "cases",
        sa.Column(
            "access_roles",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'"),
            nullable=False,
        ),
    )
    op.add_column("cases", sa.Column("resolution", sa.String(length=40), nullable=True))
    op.add_column(
        "cases",
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
    )
    op.create_index(op.f("ix_cases_case_type"), "cases", ["case_type"], unique=False)

    for table in STAGE_TABLES:
        op.alter_column(
            table,
            "stage",
            existing_type=sa.String(length=40),
            type_=sa.String(length=60),
            existing_nullable=False,
        )

    op.add_column("case_tasks", sa.Column("element_kind", sa.String(length=30), nullable=True))
    op.add_column("case_tasks", sa.Column("status", sa.String(length=20), nullable=True))
    op.add_column("case_tasks", sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("case_tasks", sa.Column("outcome", sa.Text(), nullable=True))
    op.add_column("case_tasks", sa.Column("note", sa.Text(), nullable=True))
    op.add_column("case_tasks", sa.Column("required", sa.Integer(), nullable=True))
    op.add_column(
        "case_tasks",
        sa.Column("votes", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "case_tasks",
        sa.Column("ticked", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "case_tasks",
        sa.Column("overdue", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    for table in VERSIONED_TABLES:
        op.add_column(table, sa.Column("projection_version", sa.Integer(), nullable=True))

    op.create_table(
        "projection_dead_letters",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("case_ref", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projection_dead_letters")),
    )
    op.create_index(
        op.f("ix_projection_dead_letters_case_ref"),
        "projection_dead_letters",
        ["case_ref"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_projection_dead_letters_case_ref"), table_name="projection_dead_letters")
    op.drop_table("projection_dead_letters")
    for table in VERSIONED_TABLES:
        op.drop_column(table, "projection_version")
    for column in reversed(TASK_COLUMNS):
        op.drop_column("case_tasks", column)
    # Narrowing fails if an engine case wrote a longer stage name: that is the point, the
    # downgrade must not silently truncate. Delete or shorten those rows first.
    for table in STAGE_TABLES:
        op.alter_column(
            table,
            "stage",
            existing_type=sa.String(length=60),
            type_=sa.String(length=40),
            existing_nullable=False,
        )
    op.drop_index(op.f("ix_cases_case_type"), table_name="cases")
    for column in ("data", "resolution", "access_roles", "engine", "case_type_version"):
        op.drop_column("cases", column)
    op.drop_column("cases", "case_type")
