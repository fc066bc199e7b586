"""initial read model

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 14:51:44.793262
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Account numbers come from a sequence so concurrent provisioning never collides.
    op.execute(sa.schema.CreateSequence(sa.Sequence('account_number_seq', start=10_000_001)))
    op.create_table('cases',
    sa.Column('ref', sa.String(length=64), nullable=False),
    sa.Column('workflow_id', sa.String(length=100), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('requested_by', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('stage', sa.String(length=40), nullable=False),
    sa.Column('sla_state', sa.String(length=20), nullable=True),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('ever_paused', sa.Boolean(), nullable=False),
    sa.Column('playbook_version', sa.String(length=64), nullable=True),
    sa.Column('flags', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('client_name', sa.String(length=200), nullable=False),
    sa.Column('client_email', sa.String(length=320), nullable=False),
    sa.Column('client_phone', sa.String(length=20), nullable=True),
    sa.Column('client_type', sa.String(length=20), nullable=False),
    sa.Column('client_tier', sa.String(length=20), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('profile', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('projection_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closure_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('ref', name=op.f('pk_cases')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_cases_idempotency_key')),
    sa.UniqueConstraint('workflow_id', name=op.f('uq_cases_workflow_id'))
    )
    op.create_index(op.f('ix_cases_client_tier'), 'cases', ['client_tier'], unique=False)
    op.create_index(op.f('ix_cases_client_type'), 'cases', ['client_type'], unique=False)
    op.create_index(op.f('ix_cases_created_at'), 'cases', ['created_at'], unique=False)
    op.create_index(op.f('ix_cases_stage'), 'cases', ['stage'], unique=False)
    op.create_index(op.f('ix_cases_status'), 'cases', ['status'], unique=False)
    op.create_table('accounts',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('case_ref', sa.String(length=64), nullable=False),
    sa.Column('account_number', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('close_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['case_ref'], ['cases.ref'], name=op.f('fk_accounts_case_ref_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('account_number', name=op.f('uq_accounts_account_number')),
    sa.UniqueConstraint('case_ref', name=op.f('uq_accounts_case_ref'))
    )
    op.create_table('case_events',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('case_ref', sa.String(length=64), nullable=False),
    sa.Column('event_key', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_ref'], ['cases.ref'], name=op.f('fk_case_events_case_ref_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_events')),
    sa.UniqueConstraint('case_ref', 'event_key', name='uq_case_events_case_key')
    )
    op.create_index(op.f('ix_case_events_case_ref'), 'case_events', ['case_ref'], unique=False)
    op.create_table('stage_intervals',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('case_ref', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=40), nullable=False),
    sa.Column('entered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('exited_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('sla_budget_seconds', sa.Float(), nullable=True),
    sa.Column('sla_outcome', sa.String(length=16), nullable=True),
    sa.Column('active_seconds', sa.Float(), nullable=True),
    sa.Column('paused_seconds', sa.Float(), nullable=True),
    sa.Column('escalations', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['case_ref'], ['cases.ref'], name=op.f('fk_stage_intervals_case_ref_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stage_intervals')),
    sa.UniqueConstraint('case_ref', 'seq', name='uq_stage_intervals_case_seq')
    )
    op.create_index('ix_stage_intervals_stage_entered', 'stage_intervals', ['stage', 'entered_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_stage_intervals_stage_entered', table_name='stage_intervals')
    op.drop_table('stage_intervals')
    op.drop_index(op.f('ix_case_events_case_ref'), table_name='case_events')
    op.drop_table('case_events')
    op.drop_table('accounts')
    op.drop_index(op.f('ix_cases_status'), table_name='cases')
    op.drop_index(op.f('ix_cases_stage'), table_name='cases')
    op.drop_index(op.f('ix_cases_created_at'), table_name='cases')
    op.drop_index(op.f('ix_cases_client_type'), table_name='cases')
    op.drop_index(op.f('ix_cases_client_tier'), table_name='cases')
    op.drop_table('cases')
    op.execute(sa.schema.DropSequence(sa.Sequence('account_number_seq')))
