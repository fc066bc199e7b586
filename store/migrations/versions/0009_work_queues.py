"""work queues and rebalancing

When each engine case's stage SLA runs out (``sla_due_at``, for "My work" by due time).
Who holds each case and each of its steps (``assignee``, their role ``assignee_team``, since
when), the roles that may act on a step (``roles``), and the rebalancing runs with the moves
each one made or proposed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _holder_columns(table: str) -> None:
    op.add_column(table, sa.Column("assignee", sa.String(length=120), nullable=True))
    op.add_column(table, sa.Column("assignee_team", sa.String(length=60), nullable=True))
    op.add_column(table, sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f(f"ix_{table}_assignee"), table, ["assignee"])


def upgrade() -> None:
    _holder_columns("cases")
    _holder_columns("case_tasks")
    op.add_column("cases", sa.Column("sla_due_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("case_tasks", sa.Column("roles", postgresql.JSONB(), nullable=True))
    op.add_column("case_tasks", sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "rebalance_runs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("run_key", sa.String(length=200), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=120), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("moved", sa.Integer(), server_default="0", nullable=False),
        sa.Column("proposed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("refused", sa.Integer(), server_default="0", nullable=False),
        sa.Column("teams", postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rebalance_runs")),
        sa.UniqueConstraint("run_key", name=op.f("uq_rebalance_runs_run_key")),
    )
    op.create_table(
        "rebalance_moves",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("team", sa.String(length=60), nullable=False),
        sa.Column("case_ref", sa.String(length=64), nullable=False),
        sa.Column("item", sa.String(length=60), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("from_person", sa.String(length=120), nullable=False),
        sa.Column("to_person", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["rebalance_runs.id"],
            name=op.f("fk_rebalance_moves_run_id_rebalance_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rebalance_moves")),
        sa.UniqueConstraint("run_id", "case_ref", "item", name="uq_rebalance_moves_run_item"),
    )
    op.create_index(op.f("ix_rebalance_moves_status"), "rebalance_moves", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_rebalance_moves_status"), table_name="rebalance_moves")
    op.drop_table("rebalance_moves")
    op.drop_table("rebalance_runs")
    op.drop_column("case_tasks", "opened_at")
    op.drop_column("case_tasks", "roles")
    op.drop_column("cases", "sla_due_at")
    for table in ("case_tasks", "cases"):
        op.drop_index(op.f(f"ix_{table}_assignee"), table_name=table)
        op.drop_column(table, "assigned_at")
        op.drop_column(table, "assignee_team")
        op.drop_column(table, "assignee")
