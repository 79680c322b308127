"""Bring a store made by the first cut of 0001 to the schema 0001 makes now.

0001 was edited in place before any release (52a0406): it gained `attempts.reason` and
lost the `transitions` table. A store created before that edit is at revision 0001 too,
but without the column, and the history store then failed every write ("no column named
reason"), retrying forever. This revision adds the column and drops the table where they
are the old way, and changes nothing where they are not.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "reason" not in {column["name"] for column in inspector.get_columns("attempts")}:
        op.add_column("attempts", sa.Column("reason", sa.String))
    if inspector.has_table("transitions"):
        op.drop_table("transitions")


def downgrade() -> None:
    """Nothing: 0001 as it stands has the column and no such table."""
