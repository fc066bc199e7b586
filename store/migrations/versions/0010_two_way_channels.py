"""two-way channels

Delivery state per message (``delivery_state`` and when it was delivered, opened, clicked,
bounced), the message's own input for a later fallback (``payload``), its template
``variant`` and the additional contact it went to; provider events (idempotent per
provider event id); inbound emails and SMS (attached, quarantined, consent keywords);
channel consent per address; additional contacts of a case.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("notifications", sa.Column("delivery_state", sa.String(20), nullable=True))
    for name in ("delivered_at", "opened_at", "clicked_at", "bounced_at"):
        op.add_column("notifications", sa.Column(name, TS, nullable=True))
    op.add_column("notifications", sa.Column("payload", postgresql.JSONB(), nullable=True))
    op.add_column("notifications", sa.Column("variant", sa.String(40), nullable=True))
    op.add_column("notifications", sa.Column("contact_id", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_notifications_milestone_variant", "notifications", ["milestone", "variant"]
    )
    op.create_index(op.f("ix_notifications_provider_message_id"), "notifications",
                    ["provider_message_id"])

    op.create_table(
        "delivery_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("notification_id", sa.BigInteger(), nullable=True),
        sa.Column("outbox_key", sa.String(200), nullable=True),
        sa.Column("event", sa.String(30), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("received_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("detail", postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_events")),
        sa.UniqueConstraint("provider", "event_id", name="uq_delivery_events_provider_event"),
    )
    op.create_index(op.f("ix_delivery_events_notification_id"), "delivery_events",
                    ["notification_id"])

    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("provider_id", sa.String(300), nullable=False),
        sa.Column("case_ref", sa.String(64), nullable=True),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=False, server_default=""),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attachments", postgresql.JSONB(), server_default=sa.text("'[]'"),
                  nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decided_by", sa.String(120), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint("channel", "provider_id", name="uq_inbound_messages_channel_id"),
    )
    op.create_index(op.f("ix_inbound_messages_status"), "inbound_messages", ["status"])
    op.create_index(op.f("ix_inbound_messages_case_ref"), "inbound_messages", ["case_ref"])

    op.create_table(
        "channel_consents",
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("keyword", sa.String(20), nullable=True),
        sa.Column("source", sa.String(200), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("channel", "address", name=op.f("pk_channel_consents")),
    )

    op.create_table(
        "case_contacts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("case_ref", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("role", sa.String(60), nullable=False),
        sa.Column("milestones", postgresql.JSONB(), server_default=sa.text("'[]'"),
                  nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("removed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["case_ref"], ["cases.ref"],
                                name=op.f("fk_case_contacts_case_ref_cases"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_contacts")),
    )
    op.create_index(op.f("ix_case_contacts_case_ref"), "case_contacts", ["case_ref"])


def downgrade() -> None:
    op.drop_table("case_contacts")
    op.drop_table("channel_consents")
    op.drop_index(op.f("ix_inbound_messages_case_ref"), table_name="inbound_messages")
    op.drop_index(op.f("ix_inbound_messages_status"), table_name="inbound_messages")
    op.drop_table("inbound_messages")
    op.drop_index(op.f("ix_delivery_events_notification_id"), table_name="delivery_events")
    op.drop_table("delivery_events")
    op.drop_index(op.f("ix_notifications_provider_message_id"), table_name="notifications")
    op.drop_index("ix_notifications_milestone_variant", table_name="notifications")
    for name in ("contact_id", "variant", "payload", "bounced_at", "clicked_at", "opened_at",
                 "delivered_at", "delivery_state"):
        op.drop_column("notifications", name)
