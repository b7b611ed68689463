"""Async database access: engines, sessions, migrations.

SQLite (aiosqlite) by default, PostgreSQL (asyncpg) by URL. The session
dependency owns the transaction: it commits when the request succeeds and
rolls back when it fails, so service code never commits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from alembic import command
from alembic.config import Config
from fastapi import Depends, Request
from sqlalchemy import CursorResult, Insert, Table, event, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase


def async_url(url: str) -> str:
    """Pick the async driver for plain ``sqlite://`` and ``postgresql://`` URLs."""
    parsed = make_url(url)
    drivers = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
    backend = parsed.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    if parsed.drivername in ("sqlite", "postgresql", "postgres", "postgresql+psycopg"):
        parsed = parsed.set(drivername=drivers[backend])
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str) -> AsyncEngine:
    url = async_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True
        )
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: an error's text (logged, dead-lettered) carries no row data.
    engine = create_async_engine(url, connect_args={"timeout": 15}, hide_parameters=True)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers run while a writer commits; the busy timeout waits instead of failing.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


async def insert_unless_present(
    session: AsyncSession,
    table: Table | type[DeclarativeBase],
    values: Mapping[str, Any],
    index_elements: Sequence[str] | None = None,
) -> bool:
    """``INSERT ... ON CONFLICT [(index_elements)] DO NOTHING`` into ``table`` (a table or a
    mapped class); True if the row was inserted.

    Settles a race between two writers of the same key without an error, so the
    transaction stays usable (no SAVEPOINT). On PostgreSQL the second waits for
    the first to commit or roll back, then decides; on SQLite the write lock
    serializes them. With ``index_elements`` only that unique index's conflict
    is absorbed: any other violation still raises. Elsewhere it is a plain
    insert, whose duplicate fails and is retried by the caller.
    """
    dialect = session.get_bind().dialect.name
    statement: Insert
    columns = list(index_elements) if index_elements is not None else None
    if dialect == "sqlite":
        sqlite_insert = sqlite.insert(table).values(**values)
        statement = sqlite_insert.on_conflict_do_nothing(index_elements=columns)
    elif dialect == "postgresql":
        postgresql_insert = postgresql.insert(table).values(**values)
        statement = postgresql_insert.on_conflict_do_nothing(index_elements=columns)
    else:  # pragma: no cover - other databases
        statement = insert(table).values(**values)
    result = await session.execute(statement)
    assert isinstance(result, CursorResult)
    return int(result.rowcount) == 1


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit on success, roll back on any error."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.db_sessions
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": commit before the response is sent, so a failed commit is
# the client's error response, never a 200 for lost work (FastAPI >= 0.118).
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]


async def upgrade(engine: AsyncEngine, script_location: str) -> None:
    """``alembic upgrade head`` on the engine's database.

    ``script_location`` is a package resource such as ``"order_service:alembic"``;
    the service's ``env.py`` must use ``config.attributes["connection"]``.
    """

    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", script_location)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        await connection.run_sync(run)
