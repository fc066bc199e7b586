"""document verdicts

Documents are read (PDF text, OCR, MRZ) and judged, not taken at the uploader's word:

- ``documents.verdict``: machine_verified | needs_review | rejected (NULL: not judged yet);
- ``documents.verdict_reasons``: the findings behind it, each with a code, its own verdict,
  a text for staff and one for the client;
- ``documents.reading``: what was read from the file (text lines, MRZ), kept so a re-check
  (a new upload of another kind, a retry) judges again without reading again; tagged with
  the reader's version so a better reader reads again;
- ``documents.verified_at``: when the verdict was last given.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("verdict", sa.String(20), nullable=True))
    op.add_column(
        "documents",
        sa.Column(
            "verdict_reasons",
            postgresql.JSONB(),
            server_default=sa.text("'[]'"),
            nullable=False,
        ),
    )
    op.add_column("documents", sa.Column("reading", postgresql.JSONB(), nullable=True))
    op.add_column("documents", sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("documents", "verified_at")
    op.drop_column("documents", "reading")
    op.drop_column("documents", "verdict_reasons")
    op.drop_column("documents", "verdict")
