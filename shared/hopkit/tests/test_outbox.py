"""The transactional outbox against a real broker (Tansu) and a real SQLite file database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from hopkit import tracing
from hopkit.consumer import ensure_topics
from hopkit.events import ORDER_PLACED, Envelope
from hopkit.outbox import OutboxRelay, add_to_outbox
from hopkit.testing import KafkaBroker, free_port
from kafka_testing import count, end_offset, eventually, headers_of, new_topic, outbox, read_records
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

Sessions = async_sessionmaker[AsyncSession]


def event(order_id: str) -> Envelope:
    return Envelope.new(ORDER_PLACED, "order", "alice", {"order_id": order_id})


async def place(sessions: Sessions, topic: str, envelope: Envelope, *, fail: bool = False) -> None:
    """What a service does: its change and the event in one transaction, here under a trace."""
    token = tracing.start("req-42", TRACEPARENT)
    try:
        async with sessions() as session, session.begin():
            await add_to_outbox(session, topic, envelope.data["order_id"], envelope)
            if fail:
                raise RuntimeError("the order could not be stored")
    finally:
        tracing.reset(token)


@pytest.fixture
async def relay(kafka: KafkaBroker, sessions: Sessions) -> AsyncIterator[OutboxRelay]:
    relay = OutboxRelay(kafka.bootstrap, sessions, poll_interval=0.2, backoff=(0.05, 0.5))
    await relay.start()
    yield relay
    await relay.stop()


async def test_commit_publishes_once_with_trace_headers(
    kafka: KafkaBroker, sessions: Sessions, relay: OutboxRelay
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    envelope = event("o-1")
    await place(sessions, topic, envelope)

    await eventually(lambda: _unpublished(sessions, 0), what="the row to be marked published")
    [record] = await read_records(kafka.bootstrap, topic, 1)
    assert Envelope.parse(record.value) == envelope
    assert record.key == b"o-1"
    headers = headers_of(record)
    assert headers["x-request-id"] == "req-42"
    assert headers["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")

    # Later passes find nothing to do: the event is on the topic exactly once.
    relay.notify()
    await asyncio.sleep(0.3)
    assert await end_offset(kafka.bootstrap, topic) == 1


class CountingRelay(OutboxRelay):
    """The real relay, counting its passes and the ones that published something."""

    passes = 0
    publishing_passes = 0

    async def publish_pending(self) -> int:
        published = await super().publish_pending()
        self.passes += 1
        self.publishing_passes += published > 0
        return published


async def test_commits_close_together_go_out_in_one_pass(
    kafka: KafkaBroker, sessions: Sessions
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    relay = CountingRelay(kafka.bootstrap, sessions, poll_interval=30, coalesce=3.0)
    await relay.start()

    async def start_up_pass_done() -> bool:  # it starts the producer, then finds nothing
        return relay.passes >= 1

    try:
        await eventually(start_up_pass_done, what="the start-up pass")
        for n in range(5):  # five requests, each committing its own event
            await place(sessions, topic, event(f"o-{n}"))
        # The window runs from the start-up pass's start, producer start-up included.
        assert relay.passes == 1, "the next pass began before the commits: slow start-up?"
        await eventually(lambda: _unpublished(sessions, 0), what="all rows to be published")
    finally:
        await relay.stop()
    assert relay.publishing_passes == 1
    records = await read_records(kafka.bootstrap, topic, 5)
    assert [record.key for record in records] == [f"o-{n}".encode() for n in range(5)]


async def test_rolled_back_transaction_publishes_nothing(
    kafka: KafkaBroker, sessions: Sessions, relay: OutboxRelay
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    with pytest.raises(RuntimeError):
        await place(sessions, topic, event("o-rolled-back"), fail=True)
    assert await count(sessions, outbox) == 0
    kept = event("o-kept")
    await place(sessions, topic, kept)

    await eventually(lambda: _unpublished(sessions, 0), what="the kept row to be published")
    [record] = await read_records(kafka.bootstrap, topic, 1)
    assert Envelope.parse(record.value) == kept
    assert await end_offset(kafka.bootstrap, topic) == 1


async def test_rows_go_out_in_id_order(
    kafka: KafkaBroker, sessions: Sessions, relay: OutboxRelay
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    events = [event(f"o-{n}") for n in range(250)]  # more than one batch
    async with sessions() as session, session.begin():
        for envelope in events:
            await add_to_outbox(session, topic, "same-key", envelope)
    records = await read_records(kafka.bootstrap, topic, len(events))
    assert [Envelope.parse(r.value).event_id for r in records] == [e.event_id for e in events]
    await eventually(lambda: _unpublished(sessions, 0), what="all rows to be marked")


async def test_a_commit_wakes_the_relay_before_the_poll(
    kafka: KafkaBroker, sessions: Sessions
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    relay = OutboxRelay(kafka.bootstrap, sessions, poll_interval=30)
    await relay.start()
    try:
        await eventually(lambda: _producer_ready(relay), what="the relay to connect")
        started = time.monotonic()
        await place(sessions, topic, event("o-fast"))
        await eventually(lambda: _unpublished(sessions, 0), within=5, what="publication")
        assert time.monotonic() - started < 2
    finally:
        await relay.stop()


async def test_relay_started_before_the_broker_publishes_when_it_comes(
    sessions: Sessions,
) -> None:
    port = free_port()
    relay = OutboxRelay(f"127.0.0.1:{port}", sessions, poll_interval=0.2, backoff=(0.05, 0.3))
    await relay.start()
    broker: KafkaBroker | None = None
    try:
        topic = new_topic()
        await place(sessions, topic, event("o-early"))
        await asyncio.sleep(0.5)  # the relay is failing to connect meanwhile, and must not die
        assert await _unpublished(sessions, 1)

        broker = KafkaBroker(port)
        await ensure_topics(broker.bootstrap, [topic])
        await eventually(lambda: _unpublished(sessions, 0), what="publication after start")
        [record] = await read_records(broker.bootstrap, topic, 1)
        assert Envelope.parse(record.value).data == {"order_id": "o-early"}
    finally:
        await relay.stop()
        if broker is not None:
            broker.stop()


async def test_published_rows_are_purged_after_keep_published(
    kafka: KafkaBroker, sessions: Sessions
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    await place(sessions, topic, event("o-old"))
    relay = OutboxRelay(kafka.bootstrap, sessions, keep_published=timedelta(0))
    await relay.start()
    try:
        await eventually(lambda: _rows(sessions, 0), what="the published row to be purged")
    finally:
        await relay.stop()
    assert await end_offset(kafka.bootstrap, topic) == 1


async def _rows(sessions: Sessions, expected: int) -> bool:
    return await count(sessions, outbox) == expected


async def _unpublished(sessions: Sessions, expected: int) -> bool:
    return await count(sessions, outbox, outbox.c.published_at.is_(None)) == expected


async def _producer_ready(relay: OutboxRelay) -> bool:
    return relay._producer is not None
