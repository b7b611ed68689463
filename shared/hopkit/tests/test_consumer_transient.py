"""An outage of what a handler needs is waited out, never dead-lettered (real broker, real SQLite).

A handler failing with :class:`~hopkit.events.DependencyUnavailable` or a
database that is locked or away says nothing about the event: the consumer
retries it past ``max_attempts``, for as long as it takes, and the DLQ stays
empty. Any other failure still ends in the DLQ after ``max_attempts``.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import time
import uuid
from typing import Any

import pytest
from hopkit.consumer import EventConsumer, ensure_topics, is_transient
from hopkit.events import DependencyUnavailable, dlq
from hopkit.testing import KafkaBroker
from kafka_testing import (
    committed,
    count,
    effects_table,
    end_offset,
    eventually,
    headers_of,
    new_topic,
    processed_events,
    publish,
    read_records,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_consumer import FAST_GROUP, consuming, event, record_effect

Sessions = async_sessionmaker[AsyncSession]


class OwnerDown(DependencyUnavailable):
    """Stands for a service client's "did not answer" (BillingUnavailable and the like)."""


def retries(caplog: pytest.LogCaptureFixture, event_id: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "hopkit.consumer"
        and getattr(r, "event_id", None) == event_id
        and getattr(r, "attempt", None) is not None
        and r.msg != "event"
    ]


async def test_an_owner_down_longer_than_max_attempts_is_waited_out_not_dead_lettered(
    kafka: KafkaBroker, sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    attempts = 0

    async def handler(session: AsyncSession, envelope: Any, record: Any) -> None:
        nonlocal attempts
        attempts += 1
        await record_effect(session, envelope, note=f"attempt {attempts}")
        if attempts <= 5:
            raise OwnerDown("order service unreachable: ConnectError")

    envelope = event("o-outage")
    caplog.set_level(logging.INFO, logger="hopkit.consumer")
    async with consuming(
        kafka.bootstrap, topic, handler, sessions, max_attempts=2, stuck_log_every=2
    ) as consumer:
        await publish(kafka.bootstrap, topic, envelope.to_bytes())
        await eventually(
            lambda: _committed_is(kafka.bootstrap, consumer.group_id, topic, 1),
            what="the offset commit after the outage",
        )
    assert attempts == 6
    assert await count(sessions, effects_table) == 1  # the failed attempts left nothing
    assert await count(sessions, effects_table, effects_table.c.note == "attempt 6") == 1
    assert await count(sessions, processed_events) == 1
    assert await end_offset(kafka.bootstrap, dlq(topic)) == 0

    logged = retries(caplog, envelope.event_id)
    assert [r.attempt for r in logged[:5]] == [1, 2, 3, 4, 5]  # type: ignore[attr-defined]
    assert all(r.transient is True for r in logged[:5])  # type: ignore[attr-defined]
    # Each line says what is away, and where the event waits.
    for line in logged[:5]:
        assert line.reason == "order service unreachable: ConnectError"  # type: ignore[attr-defined]
        assert (line.topic, line.partition) == (topic, 0)  # type: ignore[attr-defined]
    # WARNING while it might still be brief; past max_attempts an ERROR every 2nd retry.
    levels = [r.levelname for r in logged[:5]]
    assert levels == ["WARNING", "ERROR", "WARNING", "ERROR", "WARNING"]
    assert "partition stuck" in logged[1].getMessage()
    [done] = [r for r in caplog.records if r.msg == "event" and r.event_id == envelope.event_id]  # type: ignore[attr-defined]
    assert (done.outcome, done.attempts) == ("handled", 6)  # type: ignore[attr-defined]


async def test_a_locked_database_is_waited_out_not_dead_lettered(
    kafka: KafkaBroker,
    sessions: Sessions,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    # Another process holds SQLite's write lock (a long migration, a stuck writer).
    locker = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    errors: list[BaseException] = []
    caplog.set_level(logging.INFO, logger="hopkit.consumer")

    async def handler(session: AsyncSession, envelope: Any, record: Any) -> None:
        await session.execute(text("PRAGMA busy_timeout = 20"))  # fail fast, not in 15 s
        try:
            await record_effect(session, envelope)
        except sa_exc.OperationalError as exc:
            errors.append(exc)
            if len(errors) == 4:
                locker.rollback()  # the lock goes away after a while
            raise

    try:
        async with consuming(kafka.bootstrap, topic, handler, sessions, max_attempts=2) as c:
            await publish(kafka.bootstrap, topic, event("o-locked").to_bytes())
            await eventually(
                lambda: _committed_is(kafka.bootstrap, c.group_id, topic, 1),
                what="the offset commit once the lock is gone",
            )
    finally:
        locker.close()
    assert len(errors) == 4
    assert "database is locked" in str(errors[0])
    # A database error's text (its statement, its parameters) stays out of the logs.
    assert all(not hasattr(r, "reason") for r in caplog.records)
    assert "database is locked" not in caplog.text
    assert await count(sessions, effects_table) == 1
    assert await count(sessions, processed_events) == 1
    assert await end_offset(kafka.bootstrap, dlq(topic)) == 0


async def test_other_failures_still_dead_letter_and_outage_retries_do_not_count(
    kafka: KafkaBroker, sessions: Sessions
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    calls = 0

    async def handler(session: AsyncSession, envelope: Any, record: Any) -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise OwnerDown("billing unreachable")
        raise RuntimeError("cannot charge this")

    bad = event("o-bad")
    async with consuming(kafka.bootstrap, topic, handler, sessions, max_attempts=2) as consumer:
        await publish(kafka.bootstrap, topic, bad.to_bytes())
        [dead] = await read_records(kafka.bootstrap, dlq(topic), 1)
        await eventually(
            lambda: _committed_is(kafka.bootstrap, consumer.group_id, topic, 1),
            what="the offset commit after the dead letter",
        )
    assert calls == 5  # 3 outage retries, then max_attempts (2) real failures
    assert dead.value == bad.to_bytes()
    headers = headers_of(dead)
    assert headers["x-dlq-reason"] == "handler failed: RuntimeError: cannot charge this"
    assert headers["x-dlq-attempts"] == "5"
    assert await count(sessions, processed_events) == 0


async def test_a_database_error_is_dead_lettered_without_its_parameters(
    kafka: KafkaBroker, sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    """An IntegrityError's text carries its statement's parameters (row data, someone's
    e-mail): the dead letter's reason and the log lines name its type, never its text."""
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    secret = "alice@example.com"

    async def handler(session: AsyncSession, envelope: Any, record: Any) -> None:
        row = {"id": 424242, "event_id": envelope.event_id, "note": secret}
        await session.execute(insert(effects_table).values(**row))
        await session.execute(insert(effects_table).values(**row))  # the same primary key

    caplog.set_level(logging.DEBUG, logger="hopkit")
    async with consuming(kafka.bootstrap, topic, handler, sessions, max_attempts=2):
        await publish(kafka.bootstrap, topic, event("o-integrity").to_bytes())
        [dead] = await read_records(kafka.bootstrap, dlq(topic), 1)
    assert headers_of(dead)["x-dlq-reason"] == "handler failed: IntegrityError"
    logged = " ".join(str(vars(record)) for record in caplog.records)  # with their fields
    assert secret not in logged
    assert "IntegrityError" in logged  # the lines are there, without the text


async def test_stop_ends_an_endless_outage_wait_at_once_and_the_event_comes_again(
    kafka: KafkaBroker, sessions: Sessions
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    group = f"group-{uuid.uuid4().hex[:8]}"
    calls = 0

    async def down(session: AsyncSession, envelope: Any, record: Any) -> None:
        nonlocal calls
        calls += 1
        raise OwnerDown("inventory unreachable")

    consumer = EventConsumer(
        kafka.bootstrap,
        group,
        [topic],
        down,
        sessions,
        max_attempts=1,
        backoff=(0.05, 30.0),  # soon waiting far longer than stop() may take
        consumer_options=FAST_GROUP,
    )
    await consumer.start()
    try:
        await publish(kafka.bootstrap, topic, event("o-stuck").to_bytes())
        await eventually(lambda: _true(calls >= 6), within=20, what="retries past max_attempts")
    finally:
        started = time.monotonic()
        await consumer.stop()
        stopped_in = time.monotonic() - started
    assert stopped_in < 3.0
    assert await committed(kafka.bootstrap, group, topic) is None  # not handled: not committed
    assert await end_offset(kafka.bootstrap, dlq(topic)) == 0

    # The owner is back: the next member of the group gets the same event and applies it.
    async with consuming(kafka.bootstrap, topic, record_effect_handler, sessions, group=group):
        await eventually(
            lambda: _committed_is(kafka.bootstrap, group, topic, 1), what="the redelivered event"
        )
    assert await count(sessions, effects_table) == 1
    assert await end_offset(kafka.bootstrap, dlq(topic)) == 0


async def test_a_long_wait_keeps_the_member_in_its_group(
    kafka: KafkaBroker, sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    # aiokafka leaves the group after max_poll_interval_ms without a poll; a wait on an
    # outage longer than that must not cost the membership (and fail the offset commit).
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    until = 0.0

    async def handler(session: AsyncSession, envelope: Any, record: Any) -> None:
        nonlocal until
        until = until or time.monotonic() + 4.0
        if time.monotonic() < until:
            raise OwnerDown("order service unreachable")
        await record_effect(session, envelope)

    caplog.set_level(logging.INFO, logger="hopkit.consumer")
    options = {**FAST_GROUP, "max_poll_interval_ms": 1500}
    async with consuming(
        kafka.bootstrap,
        topic,
        handler,
        sessions,
        max_attempts=1,
        backoff=(0.1, 0.3),
        consumer_options=options,
    ) as consumer:
        await publish(kafka.bootstrap, topic, event("o-long").to_bytes())
        await eventually(
            lambda: _committed_is(kafka.bootstrap, consumer.group_id, topic, 1),
            within=20,
            what="the offset commit after the outage",
        )
    failed = [r for r in caplog.records if r.msg == "event consumer failed; retrying"]
    assert failed == []  # the commit after the wait went through at the first try
    outcomes = [r.outcome for r in caplog.records if r.msg == "event"]  # type: ignore[attr-defined]
    assert outcomes == ["handled"]
    assert await count(sessions, effects_table) == 1


def test_what_counts_as_transient() -> None:
    locked = sa_exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    lost = sa_exc.InterfaceError("SELECT 1", {}, Exception("connection is closed"))
    invalidated = sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    broken = sa_exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE failed"))
    assert is_transient(OwnerDown("x")) and is_transient(DependencyUnavailable("x"))
    assert is_transient(locked) and is_transient(lost) and is_transient(invalidated)
    assert is_transient(sa_exc.TimeoutError("QueuePool limit reached"))
    assert not is_transient(broken)
    assert not is_transient(RuntimeError("x")) and not is_transient(ValueError("x"))
    assert is_transient(TimeoutError())  # asyncpg's connect timeout arrives bare
    assert is_transient(OSError("Multiple exceptions: [Errno 111] ..., [Errno 99] ..."))
    # asyncpg raises these unwrapped while connecting (real ones: test_consumer_transient_postgres).
    assert is_transient(ConnectionRefusedError(111, "Connect call failed"))
    assert is_transient(ConnectionResetError(104, "Connection reset by peer"))
    assert is_transient(socket.gaierror(-2, "Name or service not known"))
    assert is_transient(OSError(113, "No route to host"))
    # A driver error's SQLSTATE decides (SQLAlchemy's asyncpg adapter copies it to .sqlstate).
    assert is_transient(_pg_error("57P03")) and is_transient(_pg_error("08006"))
    assert is_transient(_pg_error("53300")) and is_transient(_pg_error("40P01"))
    assert not is_transient(_pg_error("23505")) and not is_transient(_pg_error("22P02"))
    assert not is_transient(_pg_error("57014"))  # query cancelled (statement_timeout)
    # Same classes, but possibly one statement's fault: the member must not wait for ever.
    assert not is_transient(_pg_error("08P01")) and not is_transient(_pg_error("53400"))
    assert is_transient(_pg_error("25006")) and is_transient(_pg_error("28P01"))


def _pg_error(sqlstate: str) -> sa_exc.DBAPIError:
    class DriverError(Exception):
        pass

    orig = DriverError("from the server")
    orig.sqlstate = sqlstate  # type: ignore[attr-defined]
    return sa_exc.DBAPIError("SELECT 1", {}, orig)


async def record_effect_handler(session: AsyncSession, envelope: Any, record: Any) -> None:
    await record_effect(session, envelope)


async def _committed_is(bootstrap: str, group: str, topic: str, offset: int) -> bool:
    return await committed(bootstrap, group, topic) == offset


async def _true(value: bool) -> bool:
    return value
