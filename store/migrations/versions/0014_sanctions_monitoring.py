"""sanctions monitoring

- ``sanctions_list_versions``: each version of the sanctions lists that was loaded (the
  SHA-256 of its files), where it came from, how many entries, the re-screen it started
  (``rescreen-<version>``) and how that went;
- ``sanctions_alerts``: a client who matched a list entry on a re-screen, with the match for
  the audit trail (version, entry, entry content hash, score, breakdown, threshold), the
  ``sanctions_alert`` case reviewing it, and the decision (open / cleared / escalated, by
  whom, why). Unique on (client case, entry, entry hash): a cleared alert stays cleared for
  the same unchanged entry; a changed entry alerts again;
- ``screenings.threshold``: the score at which a hit was a potential match.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("screenings", sa.Column("threshold", sa.Float(), nullable=True))
    op.create_table(
        "sanctions_list_versions",
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("loaded_at", TS, nullable=False),
        sa.Column("loaded_by", sa.String(120), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("files", postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("rescreen_workflow_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("totals", postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("rescreened_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_sanctions_list_versions")),
    )
    op.create_table(
        "sanctions_alerts",
        sa.Column("alert_id", sa.String(40), nullable=False),
        sa.Column("client_case_ref", sa.String(64), nullable=False),
        sa.Column("client_name", sa.String(200), nullable=False),
        sa.Column("list_version", sa.String(64), nullable=False),
        sa.Column("list_name", sa.String(40), nullable=False),
        sa.Column("entry_id", sa.String(120), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("matched_name", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("breakdown", postgresql.JSONB(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.Column("rescreen_workflow_id", sa.String(200), nullable=True),
        sa.Column("alert_case_ref", sa.String(64), nullable=True),
        sa.Column("status", sa.String(20), server_default="open", nullable=False),
        sa.Column("decided_by", sa.String(120), nullable=True),
        sa.Column("reason_code", sa.String(60), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'cleared', 'escalated')", name=op.f("ck_sanctions_alerts_status")
        ),
        sa.ForeignKeyConstraint(
            ["client_case_ref"],
            ["cases.ref"],
            name=op.f("fk_sanctions_alerts_client_case_ref_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_sanctions_alerts")),
        sa.UniqueConstraint(
            "client_case_ref", "entry_id", "entry_hash", name="uq_sanctions_alerts_client_entry"
        ),
    )
    op.create_index(
        op.f("ix_sanctions_alerts_alert_case_ref"), "sanctions_alerts", ["alert_case_ref"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sanctions_alerts_alert_case_ref"), table_name="sanctions_alerts")
    op.drop_table("sanctions_alerts")
    op.drop_table("sanctions_list_versions")
    op.drop_column("screenings", "threshold")
