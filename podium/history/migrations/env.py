"""Alembic's environment for the history store: run on the connection it is handed.

`podium.history.database.Database.migrate` opens the connection (and, on
PostgreSQL, takes an advisory lock) and passes it in `config.attributes`.
"""

from alembic import context

from podium.history.schema import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # SQLite alters tables by copying them: the way Alembic does that safely
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
