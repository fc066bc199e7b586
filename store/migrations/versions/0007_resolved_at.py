"""cases.resolved_at

An engine case is resolved (its work done) days before it closes (``lifecycle.close_after``),
so "how long did onboarding take" is created -> resolved, not created -> closed. Nullable, no
index: the dashboard still selects by ``closed_at`` (indexed in 0005) and measures the
duration to ``resolved_at`` when there is one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("cases", "resolved_at")
