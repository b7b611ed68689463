"""Helpers for the Kafka event tests: tables, raw records in and out, bounded waits."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from hopkit.consumer import processed_events_table
from hopkit.outbox import outbox_table
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

metadata = MetaData()
outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
effects_table = Table(
    "effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("note", String(100), nullable=False),
)


def new_topic() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 10.0, what: str = "the condition"
) -> None:
    """Poll ``check`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


async def count(sessions: async_sessionmaker[AsyncSession], table: Table, *where: Any) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(table).where(*where)) or 0


async def publish(
    bootstrap: str,
    topic: str,
    value: bytes | None,
    *,
    key: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key, headers=headers or [])
    finally:
        await producer.stop()


async def end_offset(bootstrap: str, topic: str) -> int:
    """How many records partition 0 of ``topic`` holds (topics here have one partition)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        offsets = await consumer.end_offsets([tp])
        return int(offsets[tp])
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str, topic: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        offset = await consumer.committed(TopicPartition(topic, 0))
        return None if offset is None else int(offset)
    finally:
        await consumer.stop()


async def read_records(
    bootstrap: str, topic: str, expected: int, within: float = 10.0
) -> list[Any]:
    """The first ``expected`` records of partition 0 of ``topic`` (no consumer group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[Any] = []
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + within
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=200)
            records.extend(batch.get(tp, []))
    finally:
        await consumer.stop()
    if len(records) < expected:
        raise AssertionError(f"{topic}: {len(records)} records, expected {expected}")
    return records


def headers_of(record: Any) -> dict[str, str]:
    return {key: value.decode() for key, value in record.headers}


class TcpProxy:
    """Forwards a loopback port to another; :meth:`cut` is a network outage, state kept.

    Put in front of a broker that advertises the proxy's port, it lets a test
    take the broker away from its clients and give it back, as a real
    Kafka restart would (Tansu in memory forgets everything when restarted).
    """

    def __init__(self, target_port: int, port: int) -> None:
        self.target_port = target_port
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.close()
            return
        self._writers.update((writer, upstream_writer))
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            sink.close()
            self._writers.discard(sink)
