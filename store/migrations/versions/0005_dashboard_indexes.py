"""dashboard indexes

Indexes for the SLA-by-stage dashboard (api/services/dashboard.py). Each one serves one
dashboard query; the partial predicates repeat the queries' literal constants, so the planner
can prove them. Built CONCURRENTLY so a live read model keeps taking projections meanwhile.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLOSED = "status NOT IN ('completed', 'rejected', 'cancelled')"
AT_RISK = "sla_state IN ('warning', 'at_risk', 'breached')"
MANUAL_KINDS = "kind IN ('compliance_decision', 'documents_waived', 'sent_back')"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        # per-stage stats: range scan on exited_at, covering the aggregated columns
        op.create_index(
            "ix_stage_intervals_exited_dash",
            "stage_intervals",
            ["exited_at"],
            postgresql_include=[
                "stage",
                "sla_outcome",
                "active_seconds",
                "escalations",
                "case_ref",
            ],
            postgresql_where=sa.text("exited_at IS NOT NULL"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        # end to end + automation: cases closed in the window
        op.create_index(
            "ix_cases_closed_dash",
            "cases",
            ["closed_at"],
            postgresql_include=[
                "status",
                "created_at",
                "ever_paused",
                "client_type",
                "client_tier",
            ],
            postgresql_where=sa.text("closed_at IS NOT NULL"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        # at risk now: the (small) set of open cases in trouble, newest first
        op.create_index(
            "ix_cases_at_risk_dash",
            "cases",
            [sa.text("created_at DESC")],
            postgresql_include=["stage", "sla_state", "priority", "client_type", "client_tier"],
            postgresql_where=sa.text(f"{CLOSED} AND {AT_RISK}"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        # automation: "has this case a manual-intervention event?" as a tiny anti-join probe
        op.create_index(
            "ix_case_events_manual_dash",
            "case_events",
            ["case_ref"],
            postgresql_where=sa.text(MANUAL_KINDS),
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        # NPS: responses submitted in the window
        op.create_index(
            "ix_nps_responses_submitted_dash",
            "nps_responses",
            ["submitted_at"],
            postgresql_include=["score", "case_ref"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for table, name in (
            ("nps_responses", "ix_nps_responses_submitted_dash"),
            ("case_events", "ix_case_events_manual_dash"),
            ("cases", "ix_cases_at_risk_dash"),
            ("cases", "ix_cases_closed_dash"),
            ("stage_intervals", "ix_stage_intervals_exited_dash"),
        ):
            op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
