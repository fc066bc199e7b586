"""dashboard roll-up

A daily roll-up of the dashboard's facts, so a wide window no longer aggregates raw rows
(store/dashboard_rollup.py refreshes it; api/services/dashboard.py reads it):

Every day of a segment has a row from the segment's first fact on, holding *running totals*
(everything up to and including that day), so any window's figures are two rows' difference
per segment, whatever its length:

- ``dashboard_stage_totals``: per UTC day, case type, client type, tier and stage, for the
  visits that ended by then: counts, SLA outcomes, escalations, active time (count, sum, and
  bucket counts); and, for that day alone, the earliest entry of a visit that ended on it;
- ``dashboard_case_totals``: per UTC day, case type, client type and tier: cases closed,
  closed without a person (automated), completed (their seconds, and bucket counts), NPS
  answers by class (by the day given);
- ``dashboard_values``: those seconds themselves by metric, stage, bucket, day and segment
  (``n``: how many times), so the exact p90 reads the values of one bucket, segment filters
  included, with no join;
- ``dashboard_rollup_state``: the watermark (days before ``rolled_until`` are rolled up);
- ``dashboard_rollup_dirty``: UTC days whose facts changed since the last refresh. Statement
  triggers on stage_intervals, cases, case_events and nps_responses write them in the writer's
  own transaction, so a day is never read from a stale roll-up.

``dashboard_bucket(seconds)``: the fixed histogram buckets, eight per octave from 2^-6 s to
2^27 s (``width_bucket`` over explicit edges, so every caller gets the same bucket).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
EDGES = ", ".join(repr(2.0 ** (k / 8)) for k in range(-48, 217))  # 2^-6 s .. 2^27 s


def _segment() -> list[sa.Column]:
    return [
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("case_type", sa.String(60), nullable=False),
        sa.Column("client_type", sa.String(20), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
    ]


# The triggers' functions: statement-level, with transition tables, so a bulk load marks its
# days in one INSERT. Plain SQL (the manual kinds repeat MANUAL_EVENT_KINDS of
# store/dashboard_rollup.py).
INTERVALS_FN = """
CREATE FUNCTION dashboard_dirty_stage_intervals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO dashboard_rollup_dirty (day)
    SELECT DISTINCT (exited_at AT TIME ZONE 'UTC')::date FROM new_rows
    WHERE exited_at IS NOT NULL;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO dashboard_rollup_dirty (day)
    SELECT DISTINCT (exited_at AT TIME ZONE 'UTC')::date FROM old_rows
    WHERE exited_at IS NOT NULL;
  ELSE
    INSERT INTO dashboard_rollup_dirty (day)
    SELECT DISTINCT (v.at AT TIME ZONE 'UTC')::date
    FROM old_rows o JOIN new_rows n ON n.id = o.id,
         LATERAL (VALUES (o.exited_at), (n.exited_at)) v(at)
    WHERE v.at IS NOT NULL
      AND (o.case_ref, o.stage, o.entered_at, o.exited_at, o.sla_outcome, o.active_seconds,
           o.escalations)
          IS DISTINCT FROM
          (n.case_ref, n.stage, n.entered_at, n.exited_at, n.sla_outcome, n.active_seconds,
           n.escalations);
  END IF;
  RETURN NULL;
END $$;
"""

# A case's own facts count on the day it closed; a case that changes segment (case type,
# client type, tier) moves its visits and NPS answer too.
CASES_FN = """
CREATE FUNCTION dashboard_dirty_cases() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO dashboard_rollup_dirty (day)
    SELECT DISTINCT (closed_at AT TIME ZONE 'UTC')::date FROM new_rows
    WHERE closed_at IS NOT NULL;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO dashboard_rollup_dirty (day)
    SELECT DISTINCT (closed_at AT TIME ZONE 'UTC')::date FROM old_rows
    WHERE closed_at IS NOT NULL;
  ELSE
    WITH changed AS (
      SELECT n.ref, o.closed_at AS old_closed, n.closed_at AS new_closed,
             (o.case_type, o.client_type, o.client_tier)
               IS DISTINCT FROM (n.case_type, n.client_type, n.client_tier) AS moved
      FROM old_rows o JOIN new_rows n ON n.ref = o.ref
      WHERE (o.closed_at, o.status, o.resolution, o.resolved_at, o.created_at, o.ever_paused,
             o.case_type, o.client_type, o.client_tier)
            IS DISTINCT FROM
            (n.closed_at, n.status, n.resolution, n.resolved_at, n.created_at, n.ever_paused,
             n.case_type, n.client_type, n.client_tier)
    )
    INSERT INTO dashboard_rollup_dirty (day)
    SELECT DISTINCT (at AT TIME ZONE 'UTC')::date FROM (
      SELECT old_closed FROM changed
      UNION ALL SELECT new_closed FROM changed
      UNION ALL SELECT si.exited_at FROM changed c
        JOIN stage_intervals si ON si.case_ref = c.ref WHERE c.moved
      UNION ALL SELECT r.submitted_at FROM changed c
        JOIN nps_responses r ON r.case_ref = c.ref WHERE c.moved
    ) x(at)
    WHERE at IS NOT NULL;
  END IF;
  RETURN NULL;
END $$;
"""

# A manual event decides whether its (closed) case was automated.
EVENTS_FN = """
CREATE FUNCTION dashboard_dirty_case_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO dashboard_rollup_dirty (day)
    SELECT DISTINCT (c.closed_at AT TIME ZONE 'UTC')::date
    FROM new_rows e JOIN cases c ON c.ref = e.case_ref
    WHERE e.kind IN ('compliance_decision', 'documents_waived', 'sent_back')
      AND c.closed_at IS NOT NULL;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO dashboard_rollup_dirty (day)
    SELECT DISTINCT (c.closed_at AT TIME ZONE 'UTC')::date
    FROM old_rows e JOIN cases c ON c.ref = e.case_ref
    WHERE e.kind IN ('compliance_decision', 'documents_waived', 'sent_back')
      AND c.closed_at IS NOT NULL;
  ELSE
    INSERT INTO dashboard_rollup_dirty (day)
    SELECT DISTINCT (c.closed_at AT TIME ZONE 'UTC')::date
    FROM (SELECT case_ref, kind FROM old_rows UNION ALL SELECT case_ref, kind FROM new_rows) e
    JOIN cases c ON c.ref = e.case_ref
    WHERE e.kind IN ('compliance_decision', 'documents_waived', 'sent_back')
      AND c.closed_at IS NOT NULL;
  END IF;
  RETURN NULL;
END $$;
"""

NPS_FN = """
CREATE FUNCTION dashboard_dirty_nps_responses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO dashboard_rollup_dirty (day)
    SELECT DISTINCT (submitted_at AT TIME ZONE 'UTC')::date FROM new_rows;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO dashboard_rollup_dirty (day)
    SELECT DISTINCT (submitted_at AT TIME ZONE 'UTC')::date FROM old_rows;
  ELSE
    INSERT INTO dashboard_rollup_dirty (day)
    SELECT DISTINCT (v.at AT TIME ZONE 'UTC')::date
    FROM old_rows o JOIN new_rows n ON n.id = o.id,
         LATERAL (VALUES (o.submitted_at), (n.submitted_at)) v(at)
    WHERE (o.case_ref, o.score, o.submitted_at) IS DISTINCT FROM
          (n.case_ref, n.score, n.submitted_at);
  END IF;
  RETURN NULL;
END $$;
"""

# A TRUNCATE of a fact table leaves nothing to trust: forget the roll-up (the next refresh
# builds it again from the first day).
RESET_FN = """
CREATE FUNCTION dashboard_rollup_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM dashboard_rollup_state;
  DELETE FROM dashboard_stage_totals;
  DELETE FROM dashboard_case_totals;
  DELETE FROM dashboard_values;
  DELETE FROM dashboard_rollup_dirty;
  RETURN NULL;
END $$;
"""

WATCHED = {
    "stage_intervals": "dashboard_dirty_stage_intervals",
    "cases": "dashboard_dirty_cases",
    "case_events": "dashboard_dirty_case_events",
    "nps_responses": "dashboard_dirty_nps_responses",
}


def upgrade() -> None:
    op.execute(
        "CREATE FUNCTION dashboard_bucket(seconds double precision) RETURNS integer "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS "
        f"$$ SELECT width_bucket(seconds, ARRAY[{EDGES}]::double precision[]) $$"
    )
    op.create_table(
        "dashboard_stage_totals",
        *_segment(),
        sa.Column("stage", sa.String(60), nullable=False),
        sa.Column("visits", sa.BigInteger(), nullable=False),
        sa.Column("visits_with_sla", sa.BigInteger(), nullable=False),
        sa.Column("within_sla", sa.BigInteger(), nullable=False),
        sa.Column("breaches", sa.BigInteger(), nullable=False),
        sa.Column("escalations", sa.BigInteger(), nullable=False),
        sa.Column("active_n", sa.BigInteger(), nullable=False),
        sa.Column("active_sum", sa.Float(), nullable=False),
        sa.Column("first_bucket", sa.Integer(), nullable=False),
        sa.Column("counts", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("first_entered_at", TS, nullable=True),
        sa.PrimaryKeyConstraint(
            "day",
            "case_type",
            "client_type",
            "tier",
            "stage",
            name=op.f("pk_dashboard_stage_totals"),
        ),
    )
    op.create_table(
        "dashboard_case_totals",
        *_segment(),
        sa.Column("closed_cases", sa.BigInteger(), nullable=False),
        sa.Column("automated_cases", sa.BigInteger(), nullable=False),
        sa.Column("completed_cases", sa.BigInteger(), nullable=False),
        sa.Column("completed_seconds", sa.Float(), nullable=False),
        sa.Column("nps_promoters", sa.BigInteger(), nullable=False),
        sa.Column("nps_passives", sa.BigInteger(), nullable=False),
        sa.Column("nps_detractors", sa.BigInteger(), nullable=False),
        sa.Column("first_bucket", sa.Integer(), nullable=False),
        sa.Column("counts", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "case_type", "client_type", "tier", name=op.f("pk_dashboard_case_totals")
        ),
    )
    op.create_table(
        "dashboard_values",
        sa.Column("metric", sa.String(20), nullable=False),
        sa.Column("stage", sa.String(60), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        *_segment(),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "metric",
            "stage",
            "bucket",
            "day",
            "case_type",
            "client_type",
            "tier",
            "seconds",
            name=op.f("pk_dashboard_values"),
        ),
    )
    # the refresh deletes and re-reads the values of the days it recomputes
    op.create_index("ix_dashboard_values_day", "dashboard_values", ["day"])
    op.create_table(
        "dashboard_rollup_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rolled_until", sa.Date(), nullable=False),
        sa.Column("refreshed_at", TS, nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_dashboard_rollup_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_rollup_state")),
    )
    op.create_table(
        "dashboard_rollup_dirty",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("marked_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_rollup_dirty")),
    )
    op.create_index("ix_dashboard_rollup_dirty_day", "dashboard_rollup_dirty", ["day"])

    for fn in (INTERVALS_FN, CASES_FN, EVENTS_FN, NPS_FN, RESET_FN):
        op.execute(fn)
    for table, fn in WATCHED.items():
        for event, tables in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        ):
            op.execute(
                f"CREATE TRIGGER dashboard_dirty_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {fn}()"
            )
        op.execute(
            f"CREATE TRIGGER dashboard_rollup_reset AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION dashboard_rollup_reset()"
        )


def downgrade() -> None:
    for table, fn in WATCHED.items():
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS dashboard_dirty_{event} ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS dashboard_rollup_reset ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {fn}()")
    op.execute("DROP FUNCTION IF EXISTS dashboard_rollup_reset()")
    for table in (
        "dashboard_values",
        "dashboard_rollup_dirty",
        "dashboard_rollup_state",
        "dashboard_case_totals",
        "dashboard_stage_totals",
    ):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS dashboard_bucket(double precision)")
