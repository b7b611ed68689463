"""Kafka as an attacker with access to the broker uses it: read records, write records.

Envelopes are written by hand (DESIGN.md: ``event_id``, ``type``,
``occurred_at``, ``producer``, ``subject``, ``data``), not with hopkit: an
attacker does not use our library, and a forged event only has to look
right.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# aiokafka ships no type information.
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]

ORDER_PLACED = "order.placed"
ORDER_CONFIRMED = "order.confirmed"
PAYMENT_SUCCEEDED = "payment.succeeded"


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    @property
    def envelope(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.value)
        return parsed


def records_about(bootstrap: str, topic: str, order_id: str) -> list[Record]:
    """Every record of ``topic`` (from the start) whose event is about ``order_id``."""
    return asyncio.run(_records_about(bootstrap, topic, order_id))


async def _records_about(bootstrap: str, topic: str, order_id: str) -> list[Record]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        found: list[Record] = []
        while [p for p in partitions if await consumer.position(p) < end[p]]:
            batch = await consumer.getmany(*partitions, timeout_ms=1000)
            for messages in batch.values():
                for message in messages:
                    record = Record(
                        topic,
                        message.key,
                        message.value,
                        tuple((k, v) for k, v in message.headers or ()),
                    )
                    if record.envelope.get("data", {}).get("order_id") == order_id:
                        found.append(record)
        return found
    finally:
        await consumer.stop()


def publish(bootstrap: str, records: list[Record]) -> None:
    asyncio.run(_publish(bootstrap, records))


async def _publish(bootstrap: str, records: list[Record]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(
                record.topic, record.value, key=record.key, headers=list(record.headers)
            )
    finally:
        await producer.stop()


def forged(topic: str, producer: str, subject: str, data: dict[str, Any]) -> Record:
    """A well-formed event nobody of ours produced, with a fresh ``event_id``."""
    envelope = {
        "event_id": str(uuid.uuid4()),
        "type": topic,
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "producer": producer,
        "subject": subject,
        "data": data,
    }
    return Record(topic, str(data["order_id"]).encode(), json.dumps(envelope).encode(), ())
