"""dashboard at-risk index

"At risk now" (api/services/dashboard.py, ``at_risk_now``) counts every open case in trouble
and lists the newest. Since the case engine, an open case is one whose status is none of
``completed``, ``rejected``, ``cancelled`` and ``closed``: 0005's partial index leaves
``closed`` out of its predicate and covers neither ``ref`` nor ``case_type``, so each of the
cases counted was read from the heap (about 7 ms of a dashboard over 1M stage visits). This
index repeats the query's own predicate and covers every column it reads, so the count is an
index-only scan. Built CONCURRENTLY, as 0005's; named ``*_dash`` like them (migration-only,
see store/migrations/env.py).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status NOT IN ('completed', 'rejected', 'cancelled', 'closed')"  # CLOSED_STATUSES
AT_RISK = "sla_state IN ('warning', 'at_risk', 'breached')"  # AT_RISK_STATES


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_cases_at_risk_now_dash",
            "cases",
            [sa.text("created_at DESC")],
            postgresql_include=[
                "ref",
                "stage",
                "sla_state",
                "priority",
                "client_type",
                "client_tier",
                "case_type",
            ],
            postgresql_where=sa.text(f"{OPEN} AND {AT_RISK}"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_cases_at_risk_now_dash",
            table_name="cases",
            postgresql_concurrently=True,
            if_exists=True,
        )
