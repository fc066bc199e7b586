"""console_credentials

Console passwords moved to argon2id. ``CONSOLE_USERS`` is read from the environment, which the
app cannot rewrite, so a user whose configured hash is the older pbkdf2 format gets an argon2id
hash stored here at their next sign-in. ``source_fingerprint`` is the SHA-256 of the configured
hash the row replaced; a row whose fingerprint no longer matches the configuration is ignored.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_credentials",
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("source_fingerprint", sa.String(length=64), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_console_credentials")),
    )


def downgrade() -> None:
    op.drop_table("console_credentials")
