"""Transactional outbox: an event is stored with the change it announces, then relayed.

The pattern (Chris Richardson, microservices.io "Transactional outbox";
also Kleppmann, *Designing Data-Intensive Applications*, ch. 11): writing
to the database and publishing to Kafka cannot be one atomic step, so the
service writes the event as a row of its own ``outbox`` table in the same
transaction as the business change. Either both exist or neither does. A
relay then publishes unpublished rows in id order and marks each one
published only after the broker acknowledged it (``acks=all``).

Delivery is at least once: a crash between the broker's ack and the mark
publishes the row again. Consumers are idempotent (:mod:`hopkit.consumer`),
so at least once plus an idempotent effect is effectively once.

Each service adds the table to its own metadata (and so to its Alembic
migrations) with :func:`outbox_table`. Run one relay per database: a
second relay on the same rows only adds duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from .events import Envelope
from .retry import backoff_delay
from .tracing import outgoing_headers

log = logging.getLogger(__name__)

OUTBOX_TABLE = "outbox"


def outbox_table(metadata: MetaData) -> Table:
    """The ``outbox`` table in ``metadata`` (added once; later calls return it)."""
    if OUTBOX_TABLE in metadata.tables:
        return metadata.tables[OUTBOX_TABLE]
    return Table(
        OUTBOX_TABLE,
        metadata,
        # BIGINT on PostgreSQL; INTEGER on SQLite, where only that is an autoincrementing rowid.
        Column(
            "id",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("topic", String(255), nullable=False),
        Column("key", String(255), nullable=True),
        Column("payload", Text, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Index("ix_outbox_published_at_id", "published_at", "id"),
    )


# Statements only need the table's name and columns, so the module keeps its own copy.
_outbox = outbox_table(MetaData())

# Running relays in this process, woken when a transaction with outbox rows commits.
_relays: weakref.WeakSet[OutboxRelay] = weakref.WeakSet()
_WAKE_PENDING = "hopkit_outbox_wake_pending"
_WAKE_LISTENING = "hopkit_outbox_wake_listening"


async def add_to_outbox(
    session: AsyncSession, topic: str, key: str | None, envelope: Envelope
) -> None:
    """Store ``envelope`` for ``topic`` in the caller's transaction (which the caller commits).

    The current trace context (``traceparent``, ``x-request-id``) is stored
    with it and becomes the record's headers, so the consumer's logs carry
    the request that caused the event. ``key`` picks the partition: use the
    aggregate's id (the order id) to keep one aggregate's events in order.
    When the transaction commits, relays in this process wake up at once.
    """
    await session.execute(
        insert(_outbox).values(
            event_id=envelope.event_id,
            topic=topic,
            key=key,
            payload=envelope.to_bytes().decode(),
            headers=outgoing_headers(),
            created_at=datetime.now(UTC),
        )
    )
    sync_session = session.sync_session
    sync_session.info[_WAKE_PENDING] = True
    if not sync_session.info.get(_WAKE_LISTENING):
        sync_session.info[_WAKE_LISTENING] = True
        event.listen(sync_session, "after_commit", _wake_after_commit)


def _wake_after_commit(session: Session) -> None:
    if session.info.pop(_WAKE_PENDING, False):
        for relay in list(_relays):
            relay.notify()


class OutboxRelay:
    """Publishes the outbox to Kafka, in id order, for as long as the service runs.

    Started and stopped in the service's lifespan. Wakes at once when a
    transaction with outbox rows commits in this process (or when
    :meth:`notify` is called), and polls every ``poll_interval`` seconds for
    rows written elsewhere. Passes start at most every ``coalesce`` seconds:
    under load the rows committed meanwhile go out in one pass (one read, one
    update) instead of a pass each; when idle a wake-up is not delayed.

    Never raises into the service: when the broker or the database is away
    it logs, backs off (``backoff`` = first and largest delay, doubling) and
    tries again, so it may start before the broker does.
    """

    def __init__(
        self,
        bootstrap: str,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        batch_size: int = 100,
        poll_interval: float = 0.5,
        coalesce: float = 0.02,
        backoff: tuple[float, float] = (0.2, 5.0),
        keep_published: timedelta | None = timedelta(days=1),
        client_id: str = "hopkit-outbox-relay",
        producer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.session_factory = session_factory
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.coalesce = coalesce
        self.backoff = backoff
        self.keep_published = keep_published
        self.client_id = client_id
        self.producer_options = dict(producer_options or {})
        self._producer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._last_purge: float | None = None

    async def start(self) -> None:
        """Start relaying in the background; returns at once, broker or not."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stopping.clear()
        self._wake.set()  # rows left from before a restart go first
        self._task = asyncio.create_task(self._run(), name="hopkit-outbox-relay")
        _relays.add(self)

    async def stop(self) -> None:
        """Stop relaying; rows not yet acknowledged stay in the outbox for next time."""
        _relays.discard(self)
        self._loop = None
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            self._wake.set()
            try:
                await asyncio.wait_for(task, 10)
            except TimeoutError:
                log.warning("outbox relay did not stop in time; cancelled")
        await self._close_producer()

    def notify(self) -> None:
        """Publish now rather than at the next poll (call after committing outbox rows).

        Safe to call from any thread; does nothing when the relay is not running.
        """
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nothing to wake
                loop.call_soon_threadsafe(self._wake.set)

    async def publish_pending(self) -> int:
        """One pass: publish up to ``batch_size`` rows; the number marked published.

        Raises what the broker or the database raised; the background loop
        turns that into a retry.
        """
        producer = await self._ensure_producer()
        async with self.session_factory() as session:
            rows = (
                await session.execute(
                    select(
                        _outbox.c.id,
                        _outbox.c.topic,
                        _outbox.c.key,
                        _outbox.c.payload,
                        _outbox.c.headers,
                    )
                    .where(_outbox.c.published_at.is_(None))
                    .order_by(_outbox.c.id)
                    .limit(self.batch_size)
                )
            ).all()
        if not rows:
            return 0
        # Queue every record first, in id order (aiokafka keeps one batch in flight per
        # partition, so order holds), then wait for the acknowledgements.
        queued: list[tuple[int, asyncio.Future[Any]]] = []
        send_error: Exception | None = None
        for row in rows:
            headers = [(str(name), str(value).encode()) for name, value in row.headers.items()]
            try:
                future = await producer.send(
                    row.topic,
                    value=row.payload.encode(),
                    key=row.key.encode() if row.key is not None else None,
                    headers=headers,
                )
            except Exception as exc:  # later rows wait, so they do not overtake this one
                send_error = exc
                break
            queued.append((row.id, future))
        results = await asyncio.gather(*(future for _, future in queued), return_exceptions=True)
        acked = [
            row_id
            for (row_id, _), result in zip(queued, results, strict=True)
            if not isinstance(result, BaseException)
        ]
        if acked:
            async with self.session_factory() as session, session.begin():
                await session.execute(
                    update(_outbox)
                    .where(_outbox.c.id.in_(acked))
                    .values(published_at=datetime.now(UTC))
                )
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            raise failures[0]
        if send_error is not None:
            raise send_error
        return len(acked)

    async def _run(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        last_pass = -self.coalesce
        while not self._stopping.is_set():
            wait = last_pass + self.coalesce - loop.time()
            if wait > 0:
                await self._sleep(wait, wake_on_notify=False)
            last_pass = loop.time()
            try:
                published = await self.publish_pending()
                await self._purge()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the relay outlives any broker or database outage
                failures += 1
                delay = backoff_delay(self.backoff, failures)
                log.warning(
                    "outbox relay failed; retrying",
                    extra={"error": repr(exc), "failures": failures, "retry_in": round(delay, 2)},
                )
                if failures >= 3:  # start over with a fresh producer after repeated failures
                    await self._close_producer()
                await self._sleep(delay, wake_on_notify=False)
                continue
            if failures:
                log.info("outbox relay recovered", extra={"failures": failures})
                failures = 0
            if published >= self.batch_size:
                continue  # more rows are waiting
            await self._sleep(self.poll_interval, wake_on_notify=True)

    async def _sleep(self, seconds: float, *, wake_on_notify: bool) -> None:
        signal = self._wake if wake_on_notify else self._stopping
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signal.wait(), seconds)
        if wake_on_notify:
            self._wake.clear()

    async def _ensure_producer(self) -> Any:
        if self._producer is None:
            options: dict[str, Any] = {
                "acks": "all",
                "client_id": self.client_id,
                "request_timeout_ms": 15_000,
                "retry_backoff_ms": 200,
                "linger_ms": 0,
                # Duplicates are tolerated downstream, and Tansu has no InitProducerId.
                "enable_idempotence": False,
            }
            options.update(self.producer_options)
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, **options)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except Exception as exc:
                log.warning("closing the outbox producer failed", extra={"error": repr(exc)})

    async def _purge(self) -> None:
        """Delete rows published longer ago than ``keep_published`` (at most once a minute)."""
        if self.keep_published is None:
            return
        now = asyncio.get_running_loop().time()
        if self._last_purge is not None and now - self._last_purge < 60:
            return
        self._last_purge = now
        async with self.session_factory() as session, session.begin():
            await session.execute(
                delete(_outbox).where(
                    _outbox.c.published_at < datetime.now(UTC) - self.keep_published
                )
            )
