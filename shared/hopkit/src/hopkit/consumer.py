"""Consuming events: idempotent effects, offsets after effects, retries, a dead-letter topic.

Kafka delivers at least once, so a consumer sees some events more than
once (after a crash, a rebalance, or a relay that published twice). Each
event's effect therefore runs in a database transaction that also records
``(event_id, consumer_group)`` in ``processed_events``; an event already
recorded there is skipped. At least once plus an idempotent effect is
effectively once. A handler that finds nothing to do raises
:class:`~hopkit.events.NoEffect`, and then nothing is recorded: a forged event
carrying a genuine event's id must not make the genuine one a "duplicate".

The record is claimed last, just before the commit, with an insert that
does nothing when the row exists: the handler's reads and remote calls
(which come before its first write) then run without holding SQLite's one
write lock, and a concurrent consumer of the same event, finding the claim
taken, rolls its own effect back.

Offsets are committed only after those transactions committed (once per
partition and batch), so a crash in between redelivers the events (and the
record above skips them) rather than losing them. A handler that fails is
retried with exponential backoff; after ``max_attempts`` the record goes to
``<topic>.dlq`` with headers saying why, and its offset is committed so one
bad event does not stop the partition. A failure that says nothing about the
event, only that something it needs is away (:func:`is_transient`:
:class:`~hopkit.events.DependencyUnavailable`, a database that is down or
locked), is retried with the same backoff for as long as it takes and never
counts toward ``max_attempts``: an outage is not bad input, and the DLQ is
for events no retry can help. The whole member waits meanwhile, not just
that partition: records are handled one at a time, so every partition of
every topic it holds waits with it (order is kept). The member stays in its
group, an error is logged every ``stuck_log_every`` retries from the
``max_attempts``-th in a row, :meth:`EventConsumer.stop` still ends the wait at once (the
event is redelivered), and a rebalance that gives the partition to another
member ends it too (the new owner retries the event). A record that is not a
valid envelope (a poison message) goes to the DLQ at once. A record that cannot
be copied there (larger than a producer may send, or one aiokafka cannot
decode, and the rest of that one's record batch) leaves a dead letter with an
empty value and headers saying where it still is. Records of one partition
are handled one at a time, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaError,
    MessageSizeTooLargeError,
)
from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from . import tracing
from .db import insert_unless_present
from .events import (
    REQUEST_ID_HEADER,
    TRACEPARENT_HEADER,
    DependencyUnavailable,
    Envelope,
    NoEffect,
    PoisonMessage,
    RecordHeaders,
    dlq,
    header,
)
from .logs import annotate, begin_annotations, end_annotations
from .redact import redact_credentials
from .retry import backoff_delay

log = logging.getLogger(__name__)

PROCESSED_EVENTS_TABLE = "processed_events"

Handler = Callable[[AsyncSession, Envelope, ConsumerRecord], Awaitable[None]]
"""Does an event's effect with the session; the consumer owns (commits) the transaction.

Remote calls belong before the handler's first write: on SQLite a write takes the
database's write lock until the commit, and every other writer waits meanwhile.
"""

DLQ_REASON = "x-dlq-reason"
DLQ_ATTEMPTS = "x-dlq-attempts"
DLQ_TOPIC = "x-dlq-topic"
DLQ_PARTITION = "x-dlq-partition"
DLQ_OFFSET = "x-dlq-offset"
DLQ_GROUP = "x-dlq-group"
DLQ_FAILED_AT = "x-dlq-failed-at"
_DLQ_HEADERS = frozenset(
    {DLQ_REASON, DLQ_ATTEMPTS, DLQ_TOPIC, DLQ_PARTITION, DLQ_OFFSET, DLQ_GROUP, DLQ_FAILED_AT}
)
_MAX_REASON = 500
# backoff_delay doubles per attempt: past this many the delay is at its cap anyway, and
# 2.0 ** attempt would overflow during a long enough outage.
_BACKOFF_STEPS = 32
# PostgreSQL SQLSTATEs (PostgreSQL manual, Appendix A) that say the server is away, full,
# busy or failing over, not that the event's statement is wrong. Listed one by one: a few
# codes of the same classes (08P01 protocol violation, 53400 configuration limit exceeded)
# can be one statement's fault, and the whole member would wait for ever on that event.
_TRANSIENT_SQLSTATES = frozenset(
    {
        *("08000", "08001", "08003", "08004", "08006", "08007"),  # connection exception
        *("53000", "53100", "53200", "53300"),  # out of disk, memory or connections
        *("57P01", "57P02", "57P03"),  # admin or crash shutdown, cannot connect now (starting)
        *("40001", "40P01"),  # serialization failure, deadlock: "retry the transaction"
        "25006",  # read-only transaction: a primary demoted by a failover
        "55P03",  # lock not available (lock_timeout)
        *(
            "28000",
            "28P01",
        ),  # our credentials refused (rotated): an operator's fix, not the event's
    }
)


def is_transient(exc: BaseException) -> bool:
    """Whether a handler's failure is an outage of something it needs, not the event's fault.

    :class:`~hopkit.events.DependencyUnavailable` (a service did not answer);
    any ``OSError``: the network or the operating system (refused, reset,
    unreachable, timed out, a name that does not resolve, asyncio's "Multiple
    exceptions" for a host with several addresses; asyncpg raises these while
    connecting, before SQLAlchemy has a driver error to wrap), never the
    event's content, since handlers touch no files; and a database that is
    down, unreachable, full or locked: SQLAlchemy's ``OperationalError``
    (SQLite "database is locked"), ``InterfaceError`` (a connection lost
    under the driver), a pool that gave no connection in time, any DBAPI
    error that invalidated its connection, and a DBAPI error whose PostgreSQL
    SQLSTATE says the server is away or busy (``_TRANSIENT_SQLSTATES``;
    asyncpg's arrive as a plain ``DBAPIError``). Integrity and data errors are
    not transient: retrying an event that breaks a constraint will not make it
    fit.
    """
    if isinstance(exc, DependencyUnavailable | OSError):
        return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    return _sqlstate(exc.orig) in _TRANSIENT_SQLSTATES


def _describe(exc: BaseException) -> str:
    """An exception for a dead letter's reason and log line: a database error by its type
    and SQLSTATE only, since its text carries the statement and its parameters."""
    if isinstance(exc, sa_exc.SQLAlchemyError):
        state = _sqlstate(getattr(exc, "orig", None))
        return type(exc).__name__ + (f" (SQLSTATE {state})" if state else "")
    return f"{type(exc).__name__}: {exc}"


def _sqlstate(error: BaseException | None) -> str | None:
    """The SQLSTATE of a driver error: SQLAlchemy's asyncpg adapter copies asyncpg's
    ``sqlstate`` onto its error (also as ``pgcode``, psycopg2's name), and chains the
    asyncpg error as ``__cause__``."""
    for candidate in (error, getattr(error, "__cause__", None)):
        for name in ("sqlstate", "pgcode"):
            state = getattr(candidate, name, None)
            if isinstance(state, str) and state:
                return state
    return None


def processed_events_table(metadata: MetaData) -> Table:
    """The ``processed_events`` table in ``metadata`` (added once; later calls return it)."""
    if PROCESSED_EVENTS_TABLE in metadata.tables:
        return metadata.tables[PROCESSED_EVENTS_TABLE]
    return Table(
        PROCESSED_EVENTS_TABLE,
        metadata,
        Column("event_id", String(36), primary_key=True),
        Column("consumer_group", String(255), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


_processed = processed_events_table(MetaData())


class _Stopping(Exception):
    """The consumer is stopping in the middle of an event; it will be redelivered."""


class _Reassigned(Exception):
    """A rebalance gave the partition of the event in hand to another member, which retries it."""

    def __init__(self, record: ConsumerRecord) -> None:
        super().__init__(f"{record.topic}[{record.partition}]@{record.offset}")
        self.record = record


class EventConsumer:
    """Runs ``handler`` for every event on ``topics`` as member of consumer group ``group_id``.

    Started and stopped in a service's lifespan; runs in the background and
    never raises into the service. When the broker goes away it logs, backs
    off and reconnects, however long that takes. ``backoff`` is the first
    and the largest delay between attempts, doubling in between.
    ``max_attempts`` bounds the attempts a failing handler gets before its
    event is dead-lettered; transient failures (:func:`is_transient`) do not
    count, and are retried until they stop, with an error logged every
    ``stuck_log_every`` retries once there were ``max_attempts`` in a row.

    ``dlq_producer``, when given, publishes dead letters and belongs to the
    caller; otherwise the consumer makes (and closes) its own.
    ``consumer_options`` go to :class:`aiokafka.AIOKafkaConsumer`.
    """

    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        topics: Sequence[str],
        handler: Handler,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        max_attempts: int = 5,
        backoff: tuple[float, float] = (0.2, 5.0),
        dlq_producer: AIOKafkaProducer | None = None,
        consumer_options: Mapping[str, Any] | None = None,
        poll_timeout: float = 0.5,
        stuck_log_every: int = 10,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if stuck_log_every < 1:
            raise ValueError("stuck_log_every must be at least 1")
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.topics = tuple(topics)
        self.handler = handler
        self.session_factory = session_factory
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.consumer_options = dict(consumer_options or {})
        self.poll_timeout = poll_timeout
        self.stuck_log_every = stuck_log_every
        self._own_producer = dlq_producer is None
        self._producer: Any = dlq_producer
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Start consuming in the background; returns at once, broker or not."""
        if self._task is not None:
            return
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"hopkit-consumer-{self.group_id}")

    async def stop(self) -> None:
        """Stop after the event in hand (an event cut short is redelivered, never lost)."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            try:
                await asyncio.wait_for(task, 15)
            except TimeoutError:
                log.warning("event consumer did not stop in time; cancelled")
        await self._close_consumer()
        if self._own_producer:
            producer, self._producer = self._producer, None
            if producer is not None:
                with contextlib.suppress(Exception):
                    await producer.stop()

    # The loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                consumer = await self._ensure_consumer()
                try:
                    batches = await consumer.getmany(
                        timeout_ms=int(self.poll_timeout * 1000), max_records=100
                    )
                except UnicodeDecodeError:
                    # aiokafka cannot decode a record (a header key that is not UTF-8) and
                    # raises at every fetch of it: find it, dead-letter a note, carry on.
                    await self._skip_undecodable(consumer)
                    continue
                await self._handle_batches(consumer, batches)
            except asyncio.CancelledError:
                raise
            except _Stopping:
                break
            except _Reassigned as moved:
                # Not a failure: the partition is simply no longer ours (no backoff, no new
                # member). _handle_batches committed what was done and sought the rest back.
                record = moved.record
                log.info(
                    "partition reassigned while its event waited; its new owner retries it",
                    extra={
                        "group": self.group_id,
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                    },
                )
                continue
            except Exception as exc:  # the consumer outlives any broker or database outage
                failures += 1
                delay = backoff_delay(self.backoff, failures)
                log.warning(
                    "event consumer failed; retrying",
                    extra={
                        "group": self.group_id,
                        "error": repr(exc),
                        "failures": failures,
                        "retry_in": round(delay, 2),
                    },
                )
                if failures >= 5 or self._consumer is None:
                    await self._close_consumer()  # start over with a fresh group member
                await self._pause(delay)
                continue
            if failures:
                log.info("event consumer recovered", extra={"group": self.group_id})
                failures = 0

    async def _handle_batches(
        self, consumer: Any, batches: Mapping[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        # Where each partition must resume if this batch is cut short: fetching already moved
        # past the records handed out, so the unfinished ones would otherwise be skipped.
        first = {tp: records[0].offset for tp, records in batches.items() if records}
        resume = dict(first)
        try:
            for tp, records in batches.items():
                for record in records:
                    if self._stopping.is_set():
                        raise _Stopping
                    await self._handle_record(record)
                    resume[tp] = record.offset + 1
                # One offset commit per partition and batch, not per record: a commit is a
                # broker round trip, and a crash before it only redelivers recorded events.
                if records:
                    await consumer.commit({tp: resume[tp]})
        except BaseException:
            done = {tp: offset for tp, offset in resume.items() if offset > first[tp]}
            for tp, offset in resume.items():
                with contextlib.suppress(Exception):  # no longer ours after a rebalance
                    if tp in done:
                        await consumer.commit({tp: offset})
                    consumer.seek(tp, offset)
            raise

    async def _rewind(self, consumer: Any) -> None:
        """Every partition back to its committed offset: to what this group has handled.

        A getmany() that fails while decoding has already moved the positions of the
        partitions it drained before the failure, and their records are lost to us.
        (Only then: other fetch errors leave positions where aiokafka means them to be.)
        """
        earliest = self.consumer_options.get("auto_offset_reset", "earliest") == "earliest"
        for tp in consumer.assignment():
            offset = await consumer.committed(tp)
            if offset is not None:
                consumer.seek(tp, offset)
            elif earliest:  # nothing committed yet: nothing handled yet either
                await consumer.seek_to_beginning(tp)

    async def _skip_undecodable(self, consumer: Any) -> None:
        """Read each partition alone, one record at a time, dead-lettering what cannot be read.

        The record aiokafka cannot decode cannot be copied to the DLQ either; the
        dead letter carries no value, and headers saying where the record still is.
        aiokafka decodes every record of a batch up to the one asked for, so the
        records after a bad one *in the same batch* cannot be read either (a later
        batch can): each gets a dead letter of its own that says so, to be replayed
        from where it still is. Our own producers never write such a record.
        """
        await self._rewind(consumer)
        partitions = sorted(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            bad: int | None = None  # the undecodable record whose batch we are still in
            while await consumer.position(tp) < ends[tp]:
                if self._stopping.is_set():
                    raise _Stopping
                try:
                    batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1)
                except UnicodeDecodeError as exc:
                    offset = await consumer.position(tp)  # the records before it were handled
                    if bad is None:
                        bad = offset
                        reason = f"poison: undecodable record ({type(exc).__name__}); not copied"
                    else:
                        reason = (
                            "unreadable: in the record batch of the undecodable record at "
                            f"offset {bad}; not copied"
                        )
                    await self._send_dead_letter(tp.topic, tp.partition, offset, reason, attempts=0)
                    await consumer.commit({tp: offset + 1})
                    consumer.seek(tp, offset + 1)
                    continue
                bad = None
                await self._handle_batches(consumer, batch)

    async def _handle_record(self, record: ConsumerRecord) -> None:
        """The effect, or the DLQ; raises only when the record must be seen again."""
        trace = tracing.start(
            header(record.headers, REQUEST_ID_HEADER), header(record.headers, TRACEPARENT_HEADER)
        )
        annotations, annotations_token = begin_annotations()
        started = time.perf_counter()
        fields: dict[str, Any] = {
            "group": self.group_id,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
        }
        try:
            try:
                envelope = Envelope.parse(record.value)
            except PoisonMessage as poison:
                await self._dead_letter(record, f"poison: {poison.reason}", attempts=0)
                fields["outcome"] = "dead-lettered"
                return
            except Exception as exc:  # parsing is pure: whatever fails is the message's fault
                reason = f"poison: unparseable ({type(exc).__name__})"
                await self._dead_letter(record, reason, attempts=0)
                fields["outcome"] = "dead-lettered"
                return
            fields.update(event_id=envelope.event_id, type=envelope.type)
            outcome, attempts = await self._apply(envelope, record)
            fields.update(outcome=outcome, attempts=attempts)
        finally:
            fields["ms"] = round((time.perf_counter() - started) * 1000, 2)
            if "outcome" in fields:
                log.info("event", extra={**fields, **annotations})
            end_annotations(annotations_token)
            tracing.reset(trace)

    async def _apply(self, envelope: Envelope, record: ConsumerRecord) -> tuple[str, int]:
        """(outcome, attempts): the handler's effect with the event recorded, retried, else DLQ.

        Only failures that are not transient count toward ``max_attempts``; a
        transient one (a dependency away) is retried until it stops, or until
        :meth:`stop`, which raises ``_Stopping`` so the event is redelivered, or
        until a rebalance takes the record's partition away (``_Reassigned``):
        the new owner retries it, and our retries would only call the
        dependency twice and fail to commit.
        """
        failures = 0  # failures that count toward max_attempts
        waiting = 0  # transient failures in a row
        attempt = 0
        while True:
            attempt += 1
            try:
                # Closing the session without a commit rolls everything back.
                async with self.session_factory() as session:
                    if await self._already_processed(session, envelope.event_id):
                        return "duplicate", attempt
                    await self.handler(session, envelope, record)
                    # The claim comes last (see the module docstring). Losing it means a
                    # concurrent consumer recorded the event first: its effect stands, ours not.
                    if not await self._claim(session, envelope.event_id):
                        return "duplicate", attempt
                    await session.commit()
                if waiting >= self.max_attempts:
                    log.warning(
                        "event handled after its dependency came back",
                        extra={"event_id": envelope.event_id, "attempt": attempt},
                    )
                return "handled", attempt
            except asyncio.CancelledError:
                raise
            except NoEffect as nothing:  # rolled back: the event id stays unrecorded
                annotate(no_effect=nothing.reason)
                return "no-effect", attempt
            except PoisonMessage as poison:  # the handler says no retry can help
                await self._dead_letter(record, f"poison: {poison.reason}", attempts=attempt)
                return "dead-lettered", attempt
            except Exception as exc:
                transient = is_transient(exc)
                if transient:
                    waiting += 1
                else:
                    waiting = 0
                    failures += 1
                    if failures >= self.max_attempts:
                        reason = f"handler failed: {_describe(exc)}"
                        await self._dead_letter(record, reason, attempts=attempt)
                        return "dead-lettered", attempt
                delay = backoff_delay(self.backoff, min(attempt, _BACKOFF_STEPS))
                fields: dict[str, Any] = {
                    "event_id": envelope.event_id,
                    "topic": record.topic,
                    "partition": record.partition,
                    "attempt": attempt,
                    "error": type(exc).__name__,
                    "retry_in": round(delay, 3),
                    "transient": transient,
                }
                if isinstance(exc, DependencyUnavailable):
                    # Our clients write these ("billing answered 503"); a database error's
                    # text is not logged: it carries its statement's parameters.
                    fields["reason"] = redact_credentials(str(exc))[:_MAX_REASON]
                stuck = waiting - self.max_attempts
                if transient and stuck >= 0 and stuck % self.stuck_log_every == 0:
                    # Once it would have been dead-lettered, the partition is stuck on an
                    # outage: say so loudly, but not at every retry of a long one.
                    log.error(
                        "event handler waiting for a dependency; partition stuck", extra=fields
                    )
                else:
                    log.warning("event handler failed; retrying", extra=fields)
                if transient:
                    await self._stay_in_group()
                    if not self._still_ours(record):
                        raise _Reassigned(record) from None
                if await self._pause(delay):
                    raise _Stopping from None

    async def _claim(self, session: AsyncSession, event_id: str) -> bool:
        """Record the event as processed by this group; False if that was done already."""
        values = {
            "event_id": event_id,
            "consumer_group": self.group_id,
            "processed_at": datetime.now(UTC),
        }
        return await insert_unless_present(session, _processed, values)

    async def _already_processed(self, session: AsyncSession, event_id: str) -> bool:
        found = await session.scalar(
            select(_processed.c.event_id).where(
                _processed.c.event_id == event_id,
                _processed.c.consumer_group == self.group_id,
            )
        )
        return found is not None

    async def _dead_letter(self, record: ConsumerRecord, reason: str, *, attempts: int) -> None:
        """Publish the record as it came, to ``<topic>.dlq``, with headers saying why.

        Not a record that carries something shaped like a credential (a JWT, a
        refresh token), whatever else is wrong with it: the copy would carry the
        token on to whoever reads the DLQ (DESIGN.md: no bearer token in a message).
        """
        if _carries_credential(record):
            await self._send_dead_letter(
                record.topic,
                record.partition,
                record.offset,
                f"{reason}; not copied",
                attempts=attempts,
            )
            return
        producer = await self._ensure_producer()
        headers = [(key, value) for key, value in record.headers or () if key not in _DLQ_HEADERS]
        headers += _dlq_headers(
            record.topic, record.partition, record.offset, reason, attempts, self.group_id
        )
        # aiokafka sends no record without key and value; such a record arrives all the same.
        value = b"" if record.value is None and record.key is None else record.value
        try:
            await producer.send_and_wait(
                dlq(record.topic), value=value, key=record.key, headers=headers
            )
        except MessageSizeTooLargeError:
            # Bigger than a producer may send: a copy is impossible, and failing here would
            # stop the partition for good. The dead letter says where the record still is.
            size = len(record.value or b"") + len(record.key or b"")
            reason = f"{reason}; not copied: {size} bytes is too large"
            await self._send_dead_letter(
                record.topic, record.partition, record.offset, reason, attempts=attempts
            )
            return
        log.warning(
            "event sent to the dead-letter topic",
            extra={"topic": dlq(record.topic), "reason": reason[:_MAX_REASON]},
        )

    async def _send_dead_letter(
        self, topic: str, partition: int, offset: int, reason: str, *, attempts: int
    ) -> None:
        """A dead letter without the record (an empty value): headers saying where it is and why."""
        producer = await self._ensure_producer()
        headers = _dlq_headers(topic, partition, offset, reason, attempts, self.group_id)
        await producer.send_and_wait(dlq(topic), value=b"", key=None, headers=headers)
        log.warning(
            "event sent to the dead-letter topic",
            extra={"topic": dlq(topic), "reason": reason[:_MAX_REASON], "copied": False},
        )

    # Clients ------------------------------------------------------------------------------

    async def _ensure_consumer(self) -> Any:
        if self._consumer is None:
            options: dict[str, Any] = {
                "auto_offset_reset": "earliest",  # a new group starts with the backlog
                "retry_backoff_ms": 200,
            }
            options.update(self.consumer_options)
            options["enable_auto_commit"] = False  # offsets follow effects, never a timer
            consumer = AIOKafkaConsumer(
                *self.topics, bootstrap_servers=self.bootstrap, group_id=self.group_id, **options
            )
            try:
                await consumer.start()
            except BaseException:
                await consumer.stop()
                raise
            self._consumer = consumer
        return self._consumer

    async def _close_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await consumer.stop()
            except Exception as exc:
                log.warning("closing the consumer failed", extra={"error": repr(exc)})

    async def _ensure_producer(self) -> Any:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                client_id=f"{self.group_id}-dlq",
                request_timeout_ms=15_000,
                enable_idempotence=False,
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _stay_in_group(self) -> None:
        """Poll for nothing, so a long wait on an outage does not cost the group membership.

        aiokafka leaves the group after ``max_poll_interval_ms`` (5 minutes by
        default) without a fetch; then the partition goes to another member and
        this one's offset commit fails. A fetch with every partition paused
        counts as a poll, and hands out no records (positions do not move).
        Except when a rebalance completes during the poll: the partitions it
        assigns are not paused, and their records come out (their positions
        moved past them). Each goes back to its first record returned, or those
        records would be skipped.
        """
        consumer = self._consumer
        if consumer is None:
            return
        paused = set(consumer.assignment()) - set(consumer.paused())
        consumer.pause(*paused)
        try:
            returned = await consumer.getmany(timeout_ms=0)
            for tp, records in returned.items():
                if records:
                    consumer.seek(tp, records[0].offset)
        except KafkaError as exc:  # the next real poll meets it again
            log.debug("poll while waiting failed", extra={"error": repr(exc)})
        finally:
            # A rebalance during the poll may have taken some away: resume what is still ours.
            consumer.resume(*(paused & set(consumer.assignment())))

    def _still_ours(self, record: ConsumerRecord) -> bool:
        """Whether this member is still assigned the record's partition."""
        consumer = self._consumer
        if consumer is None:  # closed under us: nothing to hand over, carry on as before
            return True
        return TopicPartition(record.topic, record.partition) in consumer.assignment()

    async def _pause(self, seconds: float) -> bool:
        """Sleep, cut short by :meth:`stop`; True when stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()


def _dlq_headers(
    topic: str, partition: int, offset: int, reason: str, attempts: int, group: str
) -> RecordHeaders:
    values = {
        DLQ_REASON: reason[:_MAX_REASON],
        DLQ_ATTEMPTS: str(attempts),
        DLQ_TOPIC: topic,
        DLQ_PARTITION: str(partition),
        DLQ_OFFSET: str(offset),
        DLQ_GROUP: group,
        DLQ_FAILED_AT: datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    return [(name, value.encode()) for name, value in values.items()]


async def ensure_topics(
    bootstrap: str,
    topics: Iterable[str],
    *,
    with_dlq: bool = True,
    partitions: int = 1,
    replication_factor: int = 1,
    broker_wait: float = 30.0,
) -> list[str]:
    """Create the topics (and their ``.dlq`` topics) that do not exist yet; the ones created.

    Waits up to ``broker_wait`` seconds for the broker to answer, so it can run
    while the broker is still starting.
    """
    wanted = list(dict.fromkeys(topics))
    if with_dlq:
        wanted += [dlq(topic) for topic in wanted if not topic.endswith(".dlq")]
    deadline = time.monotonic() + broker_wait
    attempt = 0
    while True:
        attempt += 1
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [topic for topic in dict.fromkeys(wanted) if topic not in existing]
            if missing:
                response = await admin.create_topics(
                    [NewTopic(topic, partitions, replication_factor) for topic in missing]
                )
                for topic, code, message in _topic_errors(response):
                    if code not in (0, _TOPIC_ALREADY_EXISTS):
                        raise KafkaError(f"creating topic {topic} failed: {code} {message}")
            return missing
        except KafkaError:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(backoff_delay((0.1, 1.0), attempt))
        finally:
            await admin.close()


_TOPIC_ALREADY_EXISTS = 36


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    errors = []
    for item in getattr(response, "topic_errors", []):
        topic, code = item[0], item[1]
        message = item[2] if len(item) > 2 else None
        errors.append((str(topic), int(code), message))
    return errors


def _carries_credential(record: ConsumerRecord) -> bool:
    """Whether the record's key, value or a header value holds a credential's shape."""
    parts = [record.key or b"", record.value or b""]
    parts += [value or b"" for _, value in record.headers or ()]
    texts = [part.decode("utf-8", "replace") for part in parts]
    return any(redact_credentials(text) != text for text in texts)
