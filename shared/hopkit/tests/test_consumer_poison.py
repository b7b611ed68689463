"""Records no handler can use, against a real broker: each goes to the DLQ, the next is handled.

Every case here once stopped its partition for good: the consumer raised on the
record, started over at the same offset, and raised again, so the good events
behind it waited forever. Some records here cannot be made with aiokafka's
public producer API (no key and no value, a header key that is not UTF-8), but
other clients, or a hostile one, can write them; the tests build them with
aiokafka's own record batch builder.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.record.default_records import (  # type: ignore[import-untyped]
    _DefaultRecordBatchBuilderPy,
)
from hopkit import tracing
from hopkit.consumer import EventConsumer, ensure_topics
from hopkit.events import ORDER_PLACED, Envelope, dlq
from hopkit.testing import KafkaBroker
from kafka_testing import (
    committed,
    count,
    effects_table,
    eventually,
    headers_of,
    new_topic,
    processed_events,
    publish,
    read_records,
)
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

Sessions = async_sessionmaker[AsyncSession]

FAST_GROUP = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 200}
JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


def event(order_id: str) -> Envelope:
    return Envelope.new(ORDER_PLACED, "order", "alice", {"order_id": order_id})


async def record_effect(session: AsyncSession, envelope: Envelope, record: Any) -> None:
    await session.execute(
        insert(effects_table).values(event_id=envelope.event_id, note=envelope.data["order_id"])
    )


async def handled(sessions: Sessions) -> list[str]:
    async with sessions() as session:
        return list(await session.scalars(select(effects_table.c.note).order_by("id")))


@pytest.fixture
async def consumer(kafka: KafkaBroker, sessions: Sessions) -> AsyncIterator[EventConsumer]:
    """A consumer of two fresh topics (two partitions to drain in one fetch) with a
    handler that stores the order id."""
    topics = [new_topic(), new_topic()]
    await ensure_topics(kafka.bootstrap, topics)
    running = EventConsumer(
        kafka.bootstrap,
        f"group-{uuid.uuid4().hex[:8]}",
        topics,
        record_effect,
        sessions,
        max_attempts=2,
        backoff=(0.01, 0.05),
        consumer_options=FAST_GROUP,
    )
    await running.start()
    yield running
    await running.stop()


async def publish_built(
    bootstrap: str, topic: str, value: bytes | None, headers: list[tuple[Any, bytes]]
) -> None:
    """A record built by aiokafka's pure-Python batch builder, keyless, as given."""
    await publish_batch(bootstrap, topic, [(value, headers)])


async def publish_batch(
    bootstrap: str, topic: str, records: list[tuple[bytes | None, list[tuple[Any, bytes]]]]
) -> None:
    """Keyless records, as given, in one record batch (as a batching producer writes them)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        batch = producer.create_batch()
        batch._builder = _DefaultRecordBatchBuilderPy(
            2, 0, is_transactional=0, producer_id=-1, producer_epoch=-1, base_sequence=0,
            batch_size=16384,
        )  # fmt: skip
        for value, headers in records:
            assert batch.append(key=None, value=value, timestamp=None, headers=headers)
        batch.close()
        await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()


class _NotUtf8(str):
    """A header key the builder writes as bytes that are not UTF-8."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"\xff\xfetraceparent"


async def test_a_record_without_key_or_value_is_dead_lettered(
    kafka: KafkaBroker, sessions: Sessions, consumer: EventConsumer
) -> None:
    topic = consumer.topics[0]
    await publish_built(kafka.bootstrap, topic, None, [])
    await publish(kafka.bootstrap, topic, event("o-after-null").to_bytes())
    [dead] = await read_records(kafka.bootstrap, dlq(topic), 1)
    await eventually(lambda: _is(handled(sessions), ["o-after-null"]), what="the next event")
    assert headers_of(dead)["x-dlq-reason"] == "poison: empty message"
    assert headers_of(dead)["x-dlq-offset"] == "0"


async def test_a_timestamp_out_of_range_in_utc_is_poison(
    kafka: KafkaBroker, sessions: Sessions, consumer: EventConsumer
) -> None:
    topic = consumer.topics[0]
    body = json.loads(event("o-year-one").to_bytes())
    body["occurred_at"] = "0001-01-01T00:00:00+14:00"  # valid RFC 3339; before year 1 in UTC
    await publish(kafka.bootstrap, topic, json.dumps(body).encode())
    await publish(kafka.bootstrap, topic, event("o-after-year-one").to_bytes())
    [dead] = await read_records(kafka.bootstrap, dlq(topic), 1)
    await eventually(lambda: _is(handled(sessions), ["o-after-year-one"]), what="the next event")
    assert headers_of(dead)["x-dlq-reason"].startswith("poison: invalid envelope: occurred_at")


async def test_a_record_too_large_to_copy_leaves_a_dead_letter_saying_where_it_is(
    kafka: KafkaBroker, sessions: Sessions, consumer: EventConsumer
) -> None:
    topic = consumer.topics[0]
    big = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, max_request_size=4_000_000)
    await big.start()
    try:
        await big.send_and_wait(topic, b"x" * 1_500_000)  # over the DLQ producer's 1 MiB
    finally:
        await big.stop()
    await publish(kafka.bootstrap, topic, event("o-after-big").to_bytes())
    [dead] = await read_records(kafka.bootstrap, dlq(topic), 1)
    await eventually(lambda: _is(handled(sessions), ["o-after-big"]), what="the next event")
    headers = headers_of(dead)
    assert dead.value == b""
    assert headers["x-dlq-reason"].startswith("poison: oversized: 1500000 bytes")
    assert headers["x-dlq-reason"].endswith("not copied: 1500000 bytes is too large")
    assert (headers["x-dlq-topic"], headers["x-dlq-offset"]) == (topic, "0")


async def test_a_header_key_that_is_not_utf8_is_skipped_and_nothing_around_it_is_lost(
    kafka: KafkaBroker, sessions: Sessions, consumer: EventConsumer
) -> None:
    # aiokafka raises while decoding such a record, after draining the other partition of
    # the same fetch: those records must still be handled, once each.
    first, second = consumer.topics
    for order_id in ("o-1", "o-2"):
        await publish(kafka.bootstrap, second, event(order_id).to_bytes())
    await publish(kafka.bootstrap, first, event("o-3").to_bytes())
    await publish_built(
        kafka.bootstrap, first, event("o-bad-header").to_bytes(), [(_NotUtf8("x"), b"v")]
    )
    await publish(kafka.bootstrap, first, event("o-4").to_bytes())
    await publish(kafka.bootstrap, second, event("o-5").to_bytes())

    [dead] = await read_records(kafka.bootstrap, dlq(first), 1)
    await eventually(lambda: _has(sessions, 5), what="the five good events")
    assert sorted(await handled(sessions)) == ["o-1", "o-2", "o-3", "o-4", "o-5"]
    assert await count(sessions, processed_events) == 5
    headers = headers_of(dead)
    assert headers["x-dlq-reason"] == "poison: undecodable record (UnicodeDecodeError); not copied"
    assert (headers["x-dlq-topic"], headers["x-dlq-offset"]) == (first, "1")
    await eventually(
        lambda: _is(committed(kafka.bootstrap, consumer.group_id, first), 3),
        what="the offset past the bad record",
    )


async def test_the_records_after_an_undecodable_one_in_its_batch_are_dead_lettered_as_such(
    kafka: KafkaBroker, sessions: Sessions, consumer: EventConsumer
) -> None:
    # aiokafka decodes a batch's records up to the one asked for: once one is bad, the
    # rest of its batch cannot be read by us. Each gets a dead letter saying so (for a
    # replay from where it is); the next batch is handled as usual.
    topic = consumer.topics[0]
    bad_header = [(_NotUtf8("x"), b"v")]
    await publish_batch(
        kafka.bootstrap,
        topic,
        [
            (event("o-a").to_bytes(), []),
            (event("o-bad").to_bytes(), bad_header),
            (event("o-b").to_bytes(), []),
            (event("o-c").to_bytes(), []),
        ],
    )
    await publish(kafka.bootstrap, topic, event("o-d").to_bytes())

    dead = await read_records(kafka.bootstrap, dlq(topic), 3)
    await eventually(lambda: _has(sessions, 2), what="the events outside the bad batch")
    assert await handled(sessions) == ["o-a", "o-d"]
    letters = [headers_of(record) for record in dead]
    assert [(h["x-dlq-offset"], h["x-dlq-reason"]) for h in letters] == [
        ("1", "poison: undecodable record (UnicodeDecodeError); not copied"),
        ("2", "unreadable: in the record batch of the undecodable record at offset 1; not copied"),
        ("3", "unreadable: in the record batch of the undecodable record at offset 1; not copied"),
    ]
    await eventually(
        lambda: _is(committed(kafka.bootstrap, consumer.group_id, topic), 5),
        what="the offset past the last record",
    )


async def test_a_token_in_any_field_is_poison_and_never_logged(
    kafka: KafkaBroker,
    sessions: Sessions,
    consumer: EventConsumer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = consumer.topics[0]
    in_type = json.loads(event("o-type").to_bytes()) | {"type": JWT}
    in_extra = json.loads(event("o-extra").to_bytes()) | {"auth": f"Bearer {JWT}"}
    as_key = json.loads(event("o-key").to_bytes())
    as_key["data"] = {"order_id": "o-key", JWT: True}
    # Broken for another reason too: the token must not ride along into the DLQ either.
    broken = json.loads(event("o-broken").to_bytes())
    del broken["event_id"]
    broken["data"]["note"] = JWT
    caplog.set_level(logging.DEBUG, logger="hopkit")
    for body in (in_type, in_extra, as_key, broken):
        await publish(kafka.bootstrap, topic, json.dumps(body).encode())
    await publish(kafka.bootstrap, topic, event("o-clean").to_bytes())
    dead = await read_records(kafka.bootstrap, dlq(topic), 4)
    await eventually(lambda: _is(handled(sessions), ["o-clean"]), what="the clean event")
    reasons = [headers_of(record)["x-dlq-reason"] for record in dead]
    assert reasons[:3] == [
        "poison: carries what looks like a bearer token at type; not copied",
        "poison: carries what looks like a bearer token at auth; not copied",
        "poison: carries what looks like a bearer token at data (a key); not copied",
    ]
    assert reasons[3].startswith("poison: invalid envelope"), reasons[3]
    assert reasons[3].endswith("; not copied"), reasons[3]
    # The dead letters say where the record was, without it: the token goes no further.
    assert [record.value for record in dead] == [b"", b"", b"", b""]
    assert all(b"eyJ" not in repr(record.headers).encode() for record in dead)
    ours = [vars(line) for line in caplog.records if line.name.startswith("hopkit")]
    assert any(line.get("outcome") == "dead-lettered" for line in ours)
    assert "eyJ" not in repr(ours)  # the message and every extra field


async def test_a_garbled_request_id_header_is_replaced_not_carried_on(
    kafka: KafkaBroker, sessions: Sessions
) -> None:
    # The request id goes into every log line and every call made for the event: a value
    # no HTTP client sends would fail every call, and a good event would end in the DLQ.
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    seen: dict[str, str] = {}

    async def calls_on(session: AsyncSession, envelope: Envelope, record: Any) -> None:
        httpx.Request("GET", "http://127.0.0.1/", headers=tracing.outgoing_headers())
        context = tracing.current()
        assert context is not None
        seen[envelope.data["order_id"]] = context.request_id
        await record_effect(session, envelope, record)

    garbled = {
        "o-crlf": b"req\r\nx-injected: 1",
        "o-latin": "réq".encode(),
        "o-long": b"r" * 65,
        "o-bytes": b"\xff\xfe",
        "o-fine": b"req-fine-1",
    }
    running = EventConsumer(
        kafka.bootstrap,
        f"group-{uuid.uuid4().hex[:8]}",
        [topic],
        calls_on,
        sessions,
        max_attempts=2,
        backoff=(0.01, 0.05),
        consumer_options=FAST_GROUP,
    )
    await running.start()
    try:
        for order_id, request_id in garbled.items():
            await publish(
                kafka.bootstrap,
                topic,
                event(order_id).to_bytes(),
                headers=[("x-request-id", request_id)],
            )
        await eventually(lambda: _has(sessions, len(garbled)), what="every event handled")
    finally:
        await running.stop()
    assert seen.pop("o-fine") == "req-fine-1"
    for order_id, request_id in seen.items():
        assert request_id.isascii() and request_id.isprintable(), order_id
        assert len(request_id) == 16, order_id  # made from the trace id, as for a bare record


async def _is(value: Any, expected: Any) -> bool:
    return (await value) == expected


async def _has(sessions: Sessions, effects: int) -> bool:
    return await count(sessions, effects_table) >= effects
