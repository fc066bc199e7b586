"""case ETA

When each engine case should be done (``eta_at``, the p50, with ``eta_p10_at``/``eta_p90_at``)
and what the estimate rests on (``eta_basis``: model | budgets), as the case last estimated it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("cases", sa.Column("eta_at", TS, nullable=True))
    op.add_column("cases", sa.Column("eta_p10_at", TS, nullable=True))
    op.add_column("cases", sa.Column("eta_p90_at", TS, nullable=True))
    op.add_column("cases", sa.Column("eta_basis", sa.String(20), nullable=True))


def downgrade() -> None:
    for name in ("eta_basis", "eta_p90_at", "eta_p10_at", "eta_at"):
        op.drop_column("cases", name)
