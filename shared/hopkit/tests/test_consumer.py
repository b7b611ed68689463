"""The event consumer against a real broker (Tansu) and a real SQLite file database."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from hopkit import tracing
from hopkit.consumer import EventConsumer, ensure_topics
from hopkit.events import ORDER_PLACED, Envelope, PoisonMessage, dlq
from hopkit.outbox import OutboxRelay, add_to_outbox
from hopkit.testing import KafkaBroker, free_port
from kafka_testing import (
    TcpProxy,
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
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

Sessions = async_sessionmaker[AsyncSession]
Handler = Callable[[AsyncSession, Envelope, Any], Awaitable[None]]

FAST_GROUP = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 200}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def event(order_id: str) -> Envelope:
    return Envelope.new(ORDER_PLACED, "order", "alice", {"order_id": order_id})


async def record_effect(session: AsyncSession, envelope: Envelope, note: str = "done") -> None:
    await session.execute(insert(effects_table).values(event_id=envelope.event_id, note=note))


@contextlib.asynccontextmanager
async def consuming(
    bootstrap: str, topic: str, handler: Handler, sessions: Sessions, **options: Any
) -> AsyncIterator[EventConsumer]:
    options.setdefault("backoff", (0.01, 0.05))
    # Tansu makes a joining member wait about half the session timeout, and a member that
    # replaces one that left wait for the old session to expire: keep sessions short here.
    options.setdefault("consumer_options", FAST_GROUP)
    group = options.pop("group", f"group-{uuid.uuid4().hex[:8]}")
    consumer = EventConsumer(bootstrap, group, [topic], handler, sessions, **options)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def test_effect_and_processed_event_in_one_transaction_under_the_trace(
    kafka: KafkaBroker, sessions: Sessions
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    seen: list[tuple[str, str]] = []

    async def handler(session: AsyncSession, envelope: Envelope, record: Any) -> None:
        context = tracing.current()
        assert context is not None
        seen.append((context.trace_id, context.request_id))
        await record_effect(session, envelope)

    envelope = event("o-1")
    async with consuming(kafka.bootstrap, topic, handler, sessions) as consumer:
        await publish(
            kafka.bootstrap,
            topic,
            envelope.to_bytes(),
            headers=[("traceparent", TRACEPARENT.encode()), ("x-request-id", b"req-7")],
        )
        await eventually(lambda: _counts(sessions, effects=1, processed=1), what="the effect")
        group = consumer.group_id
    assert seen == [(TRACE_ID, "req-7")]
    assert await count(sessions, processed_events, processed_events.c.consumer_group == group) == 1
    assert await committed(kafka.bootstrap, group, topic) == 1


async def test_the_same_event_twice_has_one_effect(kafka: KafkaBroker, sessions: Sessions) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    calls = 0

    async def handler(session: AsyncSession, envelope: Envelope, record: Any) -> None:
        nonlocal calls
        calls += 1
        await record_effect(session, envelope)

    raw = event("o-twice").to_bytes()
    async with consuming(kafka.bootstrap, topic, handler, sessions) as consumer:
        await publish(kafka.bootstrap, topic, raw)
        await publish(kafka.bootstrap, topic, raw)
        await eventually(
            lambda: _committed_is(kafka.bootstrap, consumer.group_id, topic, 2),
            what="both records to be committed",
        )
    assert calls == 1
    assert await _counts(sessions, effects=1, processed=1)


async def test_a_handler_holds_no_write_lock_before_its_first_write(
    kafka: KafkaBroker, sessions: Sessions
) -> None:
    # Stands for a remote call during which the service's HTTP requests keep writing:
    # if the consumer had claimed the event already, this write would wait for its lock.
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    waits: list[float] = []

    async def handler(session: AsyncSession, envelope: Envelope, record: Any) -> None:
        started = asyncio.get_running_loop().time()
        async with sessions.begin() as other:
            await other.execute(
                insert(effects_table).values(event_id=envelope.event_id, note="meanwhile")
            )
        waits.append(asyncio.get_running_loop().time() - started)
        await record_effect(session, envelope)

    async with consuming(kafka.bootstrap, topic, handler, sessions):
        await publish(kafka.bootstrap, topic, event("o-lock").to_bytes())
        await eventually(lambda: _counts(sessions, effects=2, processed=1), what="both writes")
    assert len(waits) == 1 and waits[0] < 1.0  # blocked, it waits out the 15 s busy timeout


async def test_a_consumer_that_loses_the_claim_rolls_its_effect_back(
    kafka: KafkaBroker, sessions: Sessions
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    group = f"group-{uuid.uuid4().hex[:8]}"

    async def handler(session: AsyncSession, envelope: Envelope, record: Any) -> None:
        # Another member of the group (after a rebalance) records the same event first.
        async with sessions.begin() as rival:
            await rival.execute(
                insert(processed_events).values(
                    event_id=envelope.event_id, consumer_group=group, processed_at=_now()
                )
            )
        await record_effect(session, envelope)

    async with consuming(kafka.bootstrap, topic, handler, sessions, group=group):
        await publish(kafka.bootstrap, topic, event("o-rival").to_bytes())
        await eventually(
            lambda: _committed_is(kafka.bootstrap, group, topic, 1), what="the offset commit"
        )
    assert await _counts(sessions, effects=0, processed=1)


async def test_a_failing_handler_is_retried_and_its_failed_attempts_leave_nothing(
    kafka: KafkaBroker, sessions: Sessions
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    attempts = 0

    async def handler(session: AsyncSession, envelope: Envelope, record: Any) -> None:
        nonlocal attempts
        attempts += 1
        await record_effect(session, envelope, note=f"attempt {attempts}")
        if attempts <= 2:
            raise RuntimeError("the order service is not answering")

    async with consuming(kafka.bootstrap, topic, handler, sessions) as consumer:
        await publish(kafka.bootstrap, topic, event("o-flaky").to_bytes())
        await eventually(
            lambda: _committed_is(kafka.bootstrap, consumer.group_id, topic, 1),
            what="the record to be committed",
        )
    assert attempts == 3
    assert await _counts(sessions, effects=1, processed=1)
    assert await count(sessions, effects_table, effects_table.c.note == "attempt 3") == 1
    assert await end_offset_of_dlq(kafka, topic) == 0


async def test_a_handler_that_always_fails_dead_letters_and_moves_on(
    kafka: KafkaBroker, sessions: Sessions
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    group = f"group-{uuid.uuid4().hex[:8]}"
    attempts = 0

    async def failing(session: AsyncSession, envelope: Envelope, record: Any) -> None:
        nonlocal attempts
        attempts += 1
        await record_effect(session, envelope)
        raise ValueError("cannot charge")

    bad = event("o-bad")
    async with consuming(kafka.bootstrap, topic, failing, sessions, group=group, max_attempts=3):
        await publish(
            kafka.bootstrap, topic, bad.to_bytes(), key=b"o-bad", headers=[("x-request-id", b"r")]
        )
        [dead] = await read_records(kafka.bootstrap, dlq(topic), 1)
        await eventually(
            lambda: _committed_is(kafka.bootstrap, group, topic, 1), what="the offset commit"
        )
    assert attempts == 3
    assert dead.value == bad.to_bytes()
    assert dead.key == b"o-bad"
    headers = headers_of(dead)
    assert headers["x-dlq-reason"] == "handler failed: ValueError: cannot charge"
    assert headers["x-dlq-attempts"] == "3"
    assert headers["x-dlq-topic"] == topic
    assert headers["x-dlq-partition"] == "0"
    assert headers["x-dlq-offset"] == "0"
    assert headers["x-dlq-group"] == group
    assert headers["x-request-id"] == "r"  # the original headers stay
    assert await _counts(sessions, effects=0, processed=0)

    # A new member of the same group starts after the dead letter, at the next event.
    handled: list[str] = []

    async def recording(session: AsyncSession, envelope: Envelope, record: Any) -> None:
        handled.append(envelope.data["order_id"])

    async with consuming(kafka.bootstrap, topic, recording, sessions, group=group):
        await publish(kafka.bootstrap, topic, event("o-next").to_bytes())
        await eventually(lambda: _true(bool(handled)), what="the next event")
    assert handled == ["o-next"]


async def test_poison_goes_straight_to_the_dlq_and_the_next_event_is_handled(
    kafka: KafkaBroker, sessions: Sessions
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    calls = 0

    async def handler(session: AsyncSession, envelope: Envelope, record: Any) -> None:
        nonlocal calls
        calls += 1
        if envelope.data["order_id"] == "o-unusable":
            raise PoisonMessage("order_id unknown to this service")
        await record_effect(session, envelope)

    async with consuming(kafka.bootstrap, topic, handler, sessions):
        await publish(kafka.bootstrap, topic, b"\x00not an envelope")
        await publish(kafka.bootstrap, topic, event("o-unusable").to_bytes())
        await publish(kafka.bootstrap, topic, event("o-good").to_bytes())
        dead = await read_records(kafka.bootstrap, dlq(topic), 2)
        await eventually(lambda: _counts(sessions, effects=1, processed=1), what="o-good")
    assert dead[0].value == b"\x00not an envelope"
    first, second = headers_of(dead[0]), headers_of(dead[1])
    assert first["x-dlq-reason"].startswith("poison: invalid envelope: envelope: Invalid JSON")
    assert first["x-dlq-attempts"] == "0"
    assert second["x-dlq-reason"] == "poison: order_id unknown to this service"
    assert second["x-dlq-attempts"] == "1"
    assert calls == 2  # the handler's own PoisonMessage is not retried


async def test_relay_and_consumer_carry_on_across_a_broker_outage(sessions: Sessions) -> None:
    proxy_port = free_port()
    broker = KafkaBroker(advertised_port=proxy_port)
    proxy = TcpProxy(broker.port, proxy_port)
    await proxy.start()
    topic = new_topic()
    handled: list[str] = []

    async def handler(session: AsyncSession, envelope: Envelope, record: Any) -> None:
        handled.append(envelope.data["order_id"])
        await record_effect(session, envelope)

    async def place(order_id: str) -> None:
        async with sessions() as session, session.begin():
            await add_to_outbox(session, topic, order_id, event(order_id))

    relay = OutboxRelay(
        broker.bootstrap,
        sessions,
        poll_interval=0.2,
        backoff=(0.05, 0.3),
        producer_options={"request_timeout_ms": 1000},
    )
    try:
        await ensure_topics(broker.bootstrap, [topic])
        await relay.start()
        async with consuming(broker.bootstrap, topic, handler, sessions):
            await place("o-before")
            await eventually(lambda: _true(handled == ["o-before"]), what="the first event")

            await proxy.cut()  # the broker is unreachable; its log and offsets stay
            await place("o-during")
            await asyncio.sleep(1.5)  # long enough for the group session to expire
            assert handled == ["o-before"]
            await proxy.start()

            await eventually(
                lambda: _true(handled == ["o-before", "o-during"]),
                within=20,
                what="the event stored during the outage",
            )
            await place("o-after")
            await eventually(
                lambda: _true(handled == ["o-before", "o-during", "o-after"]),
                what="an event after the outage",
            )
    finally:
        await relay.stop()
        await proxy.cut()
        broker.stop()
    assert await _counts(sessions, effects=3, processed=3)


async def test_ensure_topics_creates_topics_and_dead_letter_topics_once(
    kafka: KafkaBroker,
) -> None:
    topic = new_topic()
    assert sorted(await ensure_topics(kafka.bootstrap, [topic, topic])) == [topic, dlq(topic)]
    assert await ensure_topics(kafka.bootstrap, [topic]) == []


async def end_offset_of_dlq(kafka: KafkaBroker, topic: str) -> int:
    return await end_offset(kafka.bootstrap, dlq(topic))


async def _counts(sessions: Sessions, *, effects: int, processed: int) -> bool:
    return (
        await count(sessions, effects_table) == effects
        and await count(sessions, processed_events) == processed
    )


async def _committed_is(bootstrap: str, group: str, topic: str, offset: int) -> bool:
    return await committed(bootstrap, group, topic) == offset


def _now() -> datetime:
    return datetime.now(UTC)


async def _true(value: bool) -> bool:
    return value
