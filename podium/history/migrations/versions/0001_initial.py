"""The first schema: workflows, attempts, definitions.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("workflow_id", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("mode", sa.String, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("input", JSON),
        sa.Column("output", JSON),
        sa.Column("error", JSON),
        sa.Column("started_at", sa.Double),
        sa.Column("ended_at", sa.Double),
        sa.Column("duration_s", sa.Double, sa.Computed("ended_at - started_at", persisted=True)),
        sa.Column("result", JSON),
        sa.Column("precedence", sa.SmallInteger, nullable=False),
    )
    op.create_index("ix_workflows_started_at", "workflows", ["started_at"])
    op.create_index("ix_workflows_state", "workflows", ["state"])
    op.create_index("ix_workflows_name", "workflows", ["name", "version"])
    op.create_table(
        "attempts",
        sa.Column("workflow_id", sa.String, primary_key=True),
        sa.Column("task_id", sa.String, primary_key=True),
        sa.Column("compensation", sa.Boolean, primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("task_type", sa.String),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("mode", sa.String, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("input", JSON),
        sa.Column("output", JSON),
        sa.Column("error", JSON),
        sa.Column("scheduled_at", sa.Double),
        sa.Column("started_at", sa.Double),
        sa.Column("ended_at", sa.Double),
        sa.Column(
            "duration_s",
            sa.Double,
            sa.Computed("ended_at - coalesce(started_at, scheduled_at)", persisted=True),
        ),
        sa.Column("queued_s", sa.Double, sa.Computed("started_at - scheduled_at", persisted=True)),
        sa.Column("reason", sa.String),
        sa.Column("precedence", sa.SmallInteger, nullable=False),
    )
    op.create_index("ix_attempts_task_type", "attempts", ["task_type"])
    op.create_table(
        "definitions",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("body", JSON, nullable=False),
    )


def downgrade() -> None:
    for table in ("definitions", "attempts", "workflows"):
        op.drop_table(table)
