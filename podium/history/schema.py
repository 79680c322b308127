"""The history store's tables (the migrations in `migrations/` create them).

Times are epoch seconds (UTC, float); JSON columns hold what the events carried.
Every row is a function of the events read, whatever their order and however
often they are read again: `precedence` says which kind of event last set a
row's columns (see `podium.history.rows`).

- `workflows`: one row per workflow execution; `result` is the end event's
  payload, exactly (what `podium run --json` printed, less the id).
- `attempts`: one row per task attempt (a compensation's attempts apart), with
  the times of its transitions: scheduled (the command), started (the handler),
  ended (its outcome); attempt 0 is a task decided without running (Skipped).
- `definitions`: the definitions a history store was given (their DAG, for views).

A workflow's transitions are these times, in order (`podium.history.views`):
each is written once, in the row it belongs to, not again in a log of its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

#: JSON on SQLite, JSONB on PostgreSQL; Python None is SQL NULL
JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
TIME: sa.Double[float] = sa.Double()

workflows = sa.Table(
    "workflows",
    metadata,
    sa.Column("workflow_id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("mode", sa.String, nullable=False),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("input", JSON),
    sa.Column("output", JSON),
    sa.Column("error", JSON),
    sa.Column("started_at", TIME),
    sa.Column("ended_at", TIME),
    sa.Column("duration_s", TIME, sa.Computed("ended_at - started_at", persisted=True)),
    sa.Column("result", JSON),
    sa.Column("precedence", sa.SmallInteger, nullable=False),
    sa.Index("ix_workflows_started_at", "started_at"),
    sa.Index("ix_workflows_state", "state"),
    sa.Index("ix_workflows_name", "name", "version"),
)

attempts = sa.Table(
    "attempts",
    metadata,
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
    #: the command was sent (orchestration), the handler started, the outcome was sent
    sa.Column("scheduled_at", TIME),
    sa.Column("started_at", TIME),
    sa.Column("ended_at", TIME),
    sa.Column(
        "duration_s",
        TIME,
        sa.Computed("ended_at - coalesce(started_at, scheduled_at)", persisted=True),
    ),
    sa.Column("queued_s", TIME, sa.Computed("started_at - scheduled_at", persisted=True)),
    #: why a task was decided without running (a choreography participant's Skipped)
    sa.Column("reason", sa.String),
    sa.Column("precedence", sa.SmallInteger, nullable=False),
    sa.Index("ix_attempts_task_type", "task_type"),
)

definitions = sa.Table(
    "definitions",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("body", JSON, nullable=False),
)

#: the table the migrations' revision lives in (not Alembic's default: a database
#: shared with an application that has its own migrations keeps them apart)
VERSION_TABLE = "podium_schema_version"
