"""The history database: where it is, its migrations, one transaction per batch, reads.

SQLAlchemy 2 (async) over SQLite by default (aiosqlite) or PostgreSQL (asyncpg).
`PODIUM_HISTORY_URL` is an ordinary SQLAlchemy URL; a URL that names no driver
gets the async one (`sqlite:///x.db` -> `sqlite+aiosqlite:///x.db`,
`postgresql://...` -> `postgresql+asyncpg://...`). The writer runs the Alembic
migrations shipped in this package when it opens the database; readers never
change it.

Errors of the database driver reach callers as `HistoryError` with one line to
show, except while writing, where the caller decides (the history store retries).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from podium.history import schema
from podium.history.rows import ATTEMPT_COLUMNS, WORKFLOW_COLUMNS, Batch

log = logging.getLogger("podium.history")

#: the history file when PODIUM_HISTORY_URL is not set, in the working directory
DEFAULT_FILE = "podium-history.db"
ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
#: how long a SQLite writer waits for another one's lock (`podium run` beside a store)
SQLITE_BUSY_S = 30.0


_MIGRATING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


class HistoryError(Exception):
    """The history database cannot be reached or read; the message is one line."""


def default_url() -> str:
    return f"sqlite:///{Path.cwd() / DEFAULT_FILE}"


def async_url(url: str) -> URL:
    """The URL with an async driver: the default one when it names none."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise HistoryError(f"invalid history URL {url!r}: {error}") from None
    backend = "postgresql" if parsed.drivername == "postgres" else parsed.get_backend_name()
    if "+" not in parsed.drivername:
        if backend not in ASYNC_DRIVERS:
            raise HistoryError(f"history URL {url!r}: use sqlite:// or postgresql://")
        parsed = parsed.set(drivername=ASYNC_DRIVERS[backend])
    return parsed


def describe(url: URL) -> str:
    """The URL to show: no password."""
    return url.render_as_string(hide_password=True)


class Database:
    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self._engine: AsyncEngine | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    def exists(self) -> bool:
        """False for a SQLite file not created yet (readers then see an empty history)."""
        database = self.url.database
        if not self.is_sqlite or not database or database == ":memory:":
            return True
        return Path(database).exists()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> AsyncEngine:
        options: dict[str, Any] = {
            "json_serializer": _json_text,
            "json_deserializer": orjson.loads,
        }
        if self.is_sqlite:
            options["connect_args"] = {"timeout": SQLITE_BUSY_S}
        try:
            engine = create_async_engine(self.url, **options)
        except (exc.ArgumentError, exc.InvalidRequestError, ImportError) as error:
            raise HistoryError(f"history URL {describe(self.url)}: {error}") from None
        if self.is_sqlite:
            sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    # -- the writer -------------------------------------------------------------------

    async def migrate(self) -> None:
        """Bring the schema to the latest revision (several writers may race: one wins)."""
        if self.is_sqlite and self.url.database:
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        # Alembic's `context` and `op` are module globals: one migration per process at once
        loop = asyncio.get_running_loop()
        async with _MIGRATING.setdefault(loop, asyncio.Lock()):
            await self._migrate()

    async def _migrate(self) -> None:
        for attempt in range(10):
            try:
                async with self.engine.begin() as connection:
                    if not self.is_sqlite:  # one migrating process at a time
                        await connection.execute(
                            sa.text("SELECT pg_advisory_xact_lock(hashtext('podium.history'))")
                        )
                    await connection.run_sync(_upgrade)
                return
            except exc.OperationalError as error:
                # SQLite has no DDL lock: another writer created the tables meanwhile
                if attempt == 9 or not self.is_sqlite:
                    raise HistoryError(_line(error)) from None
                await asyncio.sleep(0.2)
            except (OSError, exc.DBAPIError) as error:
                raise HistoryError(_line(error)) from None

    async def put_definitions(self, bodies: Iterable[Mapping[str, Any]]) -> None:
        rows = [{"name": b["name"], "version": b["version"], "body": dict(b)} for b in bodies]
        if not rows:
            return
        statement = self._insert(schema.definitions)
        statement = statement.on_conflict_do_update(
            index_elements=["name", "version"], set_={"body": statement.excluded.body}
        )
        async with self.engine.begin() as connection:
            await connection.execute(statement, rows)

    async def write(self, batch: Batch) -> None:
        """One batch, in one transaction."""
        async with self.engine.begin() as connection:
            await self._upsert(connection, schema.workflows, batch.workflows, WORKFLOW_COLUMNS)
            await self._upsert(connection, schema.attempts, batch.attempts, ATTEMPT_COLUMNS)

    def _insert(self, table: sa.Table) -> Any:
        return (sqlite.insert if self.is_sqlite else postgresql.insert)(table)

    async def _upsert(
        self,
        connection: AsyncConnection,
        table: sa.Table,
        rows: Mapping[Any, dict[str, Any]],
        columns: Sequence[str],
    ) -> None:
        """Insert, or merge into the stored row by `rows._merge`'s rule, in SQL."""
        if not rows:
            return
        statement = self._insert(table)
        new, old = statement.excluded, table.c
        stronger = new.precedence >= old.precedence
        merged = {
            c: sa.case(
                (sa.and_(new[c].is_not(None), sa.or_(stronger, old[c].is_(None))), new[c]),
                else_=old[c],
            )
            for c in columns
        }
        merged["precedence"] = sa.case(
            (new.precedence > old.precedence, new.precedence), else_=old.precedence
        )
        keys = [c.name for c in table.primary_key.columns]
        statement = statement.on_conflict_do_update(index_elements=keys, set_=merged)
        # sorted: two writers (a `podium run` beside a store) lock rows in one order
        await connection.execute(statement, [rows[k] for k in sorted(rows)])

    # -- readers ----------------------------------------------------------------------

    async def workflow(self, workflow_id: str) -> dict[str, Any] | None:
        rows = await self._read(
            sa.select(schema.workflows).where(schema.workflows.c.workflow_id == workflow_id)
        )
        return rows[0] if rows else None

    async def workflows(
        self,
        *,
        state: str | None = None,
        name: str | None = None,
        mode: str | None = None,
        since: float | None = None,
        until: float | None = None,
        ids: Collection[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Newest first (by start), at most `limit` after skipping `offset`; started in
        [`since`, `until`) when given (epoch seconds)."""
        table = schema.workflows
        query = _filtered(sa.select(table), state, name, mode, since, until)
        if ids is not None:
            query = query.where(table.c.workflow_id.in_(list(ids)))
        order = (table.c.started_at.desc().nulls_first(), table.c.workflow_id)
        return await self._read(query.order_by(*order).limit(limit).offset(offset))

    async def count(
        self,
        *,
        state: str | None = None,
        name: str | None = None,
        mode: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> dict[str, int]:
        """How many workflows the filters select, by state."""
        table = schema.workflows
        query = sa.select(table.c.state, sa.func.count().label("n")).group_by(table.c.state)
        rows = await self._read(_filtered(query, state, name, mode, since, until))
        return {row["state"]: row["n"] for row in rows}

    async def fingerprints(self, newest: int) -> dict[str, tuple[Any, ...]]:
        """What changes when a workflow's rows change, for the newest workflows and every one
        not ended: its state and end, and its attempts' number, ends and precedences."""
        workflows, attempts = schema.workflows, schema.attempts
        recent = sa.select(workflows.c.workflow_id).order_by(
            workflows.c.started_at.desc().nulls_first()
        )
        watched = sa.or_(
            workflows.c.ended_at.is_(None),
            workflows.c.workflow_id.in_(recent.limit(newest).scalar_subquery()),
        )
        tally = (
            sa.select(
                attempts.c.workflow_id,
                sa.func.count().label("attempts"),
                sa.func.count(attempts.c.ended_at).label("ended"),
                sa.func.sum(attempts.c.precedence).label("precedence"),
            )
            .group_by(attempts.c.workflow_id)
            .subquery()
        )
        query = (
            sa.select(
                workflows.c.workflow_id,
                workflows.c.state,
                workflows.c.ended_at,
                workflows.c.precedence,
                tally.c.attempts,
                tally.c.ended,
                tally.c.precedence.label("attempt_precedence"),
            )
            .outerjoin(tally, tally.c.workflow_id == workflows.c.workflow_id)
            .where(watched)
        )
        rows = await self._read(query)
        return {row.pop("workflow_id"): tuple(row.values()) for row in rows}

    async def attempts(self, workflow_id: str) -> list[dict[str, Any]]:
        table = schema.attempts
        query = sa.select(table).where(table.c.workflow_id == workflow_id)
        return await self._read(query.order_by(table.c.task_id, table.c.attempt))

    async def definitions(self) -> list[dict[str, Any]]:
        """Every definition recorded, by name and version."""
        table = schema.definitions
        rows = await self._read(sa.select(table.c.body).order_by(table.c.name, table.c.version))
        return [row["body"] for row in rows]

    async def definition(self, name: str, version: int) -> dict[str, Any] | None:
        table = schema.definitions
        query = sa.select(table.c.body).where(table.c.name == name, table.c.version == version)
        rows = await self._read(query)
        return rows[0]["body"] if rows else None

    async def _read(self, query: sa.Select[Any]) -> list[dict[str, Any]]:
        if not self.exists():
            return []
        try:
            async with self.engine.connect() as connection:
                if not await connection.run_sync(_has_schema):
                    return []
                result = await connection.execute(query)
                return [dict(row._mapping) for row in result]
        except (OSError, exc.DBAPIError) as error:
            raise HistoryError(_line(error)) from None


def _filtered(
    query: sa.Select[Any],
    state: str | None,
    name: str | None,
    mode: str | None,
    since: float | None,
    until: float | None,
) -> sa.Select[Any]:
    table = schema.workflows
    for column, value in (("state", state), ("name", name), ("mode", mode)):
        if value is not None:
            query = query.where(table.c[column] == value)
    if since is not None:
        query = query.where(table.c.started_at >= since)
    if until is not None:
        query = query.where(table.c.started_at < until)
    return query


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "podium.history:migrations")
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _has_schema(connection: Connection) -> bool:
    return sa.inspect(connection).has_table(schema.VERSION_TABLE)


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    # WAL: readers (the CLI, the API) never block the writer, nor it them
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _line(error: BaseException) -> str:
    """A driver error in one line."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return text[0] if text else type(error).__name__
