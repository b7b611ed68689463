"""`hopshop dlq` against a real broker, with dead letters a real hopkit consumer wrote.

The stack is a state file naming the broker as its running kafka (a process of
its own group stands in for kafka's pid, so the stack counts as running).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from hopkit.consumer import (
    DLQ_FAILED_AT,
    DLQ_GROUP,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_REASON,
    DLQ_TOPIC,
    EventConsumer,
    processed_events_table,
)
from hopkit.db import create_engine, session_factory
from hopkit.events import ALL_TOPICS, ORDER_PLACED, PAYMENT_SUCCEEDED, Envelope, PoisonMessage, dlq
from hopkit.testing import KafkaBroker
from hopshop_stack import state
from hopshop_stack.cli import main
from hopshop_stack.deadletters import MAX_WIDTH, read_dead_letters
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession

# Shaped like a JWT (RFC 7519 §3): what someone might paste into a forged event.
JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXRoYXQtaXMtbG9uZw"
GROUP = "billing"


@pytest.fixture
def kafka() -> Iterator[KafkaBroker]:
    """A fresh broker per test (the DLQ topics have fixed names), with the shop's topics."""
    broker = KafkaBroker()
    broker.create_topics(ALL_TOPICS)
    yield broker
    broker.stop()


@pytest.fixture
def stand_in() -> Iterator[int]:
    """A running process leading its own group: what `hopshop up` records for kafka."""
    process = subprocess.Popen(["sleep", "300"], start_new_session=True)  # noqa: S607
    yield process.pid
    process.kill()
    process.wait()


def record_stack(state_dir: Path, bootstrap: str, pid: int) -> None:
    port = int(bootstrap.rsplit(":", 1)[1])
    kafka = state.ComponentState(
        name="kafka",
        kind="kafka",
        pid=pid,
        port=port,
        address=bootstrap,
        health_url=None,
        log=str(state_dir / "logs" / "kafka.log"),
    )
    found = state.StackState("now", "detached", None, vulnerable=False, components=[kafka])
    state.save(state_dir, found)


def dlq_command(state_dir: Path, *args: str) -> list[str]:
    return ["dlq", "--state-dir", str(state_dir), *args]


async def publish(bootstrap: str, topic: str, value: bytes, headers: Any = ()) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, headers=list(headers))
    finally:
        await producer.stop()


async def refuse(session: AsyncSession, envelope: Envelope, record: Any) -> None:
    """A handler that finds the event unusable, as billing does an order it cannot charge."""
    raise PoisonMessage("order has no total")


async def dead_letter_through_a_consumer(bootstrap: str, tmp_path: Path, values: int) -> None:
    """Run a real EventConsumer of order.placed until ``values`` dead letters are written."""
    metadata = MetaData()
    processed_events_table(metadata)
    engine = create_engine(f"sqlite:///{tmp_path / 'events.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    consumer = EventConsumer(
        bootstrap, GROUP, [ORDER_PLACED], refuse, session_factory(engine), max_attempts=1
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + 30
        while len(await asyncio.to_thread(read_dead_letters, bootstrap, [dlq(ORDER_PLACED)])) < (
            values
        ):
            assert time.monotonic() < deadline, "the consumer wrote no dead letters in 30 s"
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()
        await engine.dispose()


def test_dead_letters_are_listed_one_line_each_and_no_value_is_printed(
    kafka: KafkaBroker, stand_in: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = Envelope.new(ORDER_PLACED, "order", "alice", {"order_id": "ord_1"})
    # A forged event with a token pasted in: the consumer dead-letters it without a copy.
    forged = {**json.loads(good.to_bytes()), "event_id": str(uuid.uuid4()), "data": {"t": JWT}}
    record_stack(tmp_path, kafka.bootstrap, stand_in)

    async def scenario() -> None:
        await publish(kafka.bootstrap, ORDER_PLACED, good.to_bytes())
        await publish(kafka.bootstrap, ORDER_PLACED, json.dumps(forged).encode())
        await publish(kafka.bootstrap, ORDER_PLACED, b"not json at all")
        await dead_letter_through_a_consumer(kafka.bootstrap, tmp_path, values=3)

    asyncio.run(scenario())
    assert main(dlq_command(tmp_path)) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert all(len(line) <= MAX_WIDTH for line in lines), out
    # One line per dead letter; a reason too long for it goes on, indented.
    refused, not_copied, unparseable = [line for line in lines if not line.startswith(" ")]
    assert f"  {GROUP}  order.placed[0]@0  {good.event_id[:8]}  " in refused
    assert refused.endswith("poison: order has no total")
    assert "order.placed[0]@1  (no copy)  poison: carries what looks like a bearer" in not_copied
    assert "poison: carries what looks like a bearer token at data.t; not copied" in " ".join(
        line.strip() for line in lines
    )
    assert "order.placed[0]@2  (not an event)  poison: invalid envelope" in unparseable
    assert "eyJ" not in out and "ord_1" not in out and "not json" not in out


def test_a_forged_dead_letter_shows_no_value_and_no_token_in_its_headers(
    kafka: KafkaBroker, stand_in: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Anyone who may write to a .dlq topic can put anything there, headers included.
    envelope = Envelope.new(PAYMENT_SUCCEEDED, "billing", "alice", {"order_id": "ord_2"})
    with_token = {**json.loads(envelope.to_bytes()), "data": {"note": f"Bearer {JWT}"}}
    headers = [
        (DLQ_REASON, f"handler failed: ValueError: {JWT}\n\x1b[31mred".encode()),
        (DLQ_TOPIC, PAYMENT_SUCCEEDED.encode()),
        (DLQ_PARTITION, b"0"),
        (DLQ_OFFSET, b"7"),
        (DLQ_GROUP, b"order"),
        (DLQ_FAILED_AT, b"2030-01-02T03:04:05.000000Z"),
    ]
    record_stack(tmp_path, kafka.bootstrap, stand_in)
    asyncio.run(
        publish(kafka.bootstrap, dlq(PAYMENT_SUCCEEDED), json.dumps(with_token).encode(), headers)
    )
    assert main(dlq_command(tmp_path, "--topic", PAYMENT_SUCCEEDED)) == 0
    out = capsys.readouterr().out
    line, rest = out.splitlines()
    assert "  order  payment.succeeded[0]@7  (not an event)  handler failed: Value" in line
    assert rest == "    [redacted] [31mred"
    assert line[:5] in ("01-01", "01-02", "01-03")  # 2030-01-02T03:04:05Z in local time
    assert "eyJ" not in out and "Bearer" not in out and "\x1b" not in out and "ord_2" not in out


def test_no_dead_letters_is_said_and_reading_twice_reads_the_same(
    kafka: KafkaBroker, stand_in: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_stack(tmp_path, kafka.bootstrap, stand_in)
    assert main(dlq_command(tmp_path)) == 0
    assert main(dlq_command(tmp_path, "--topic", "order.cancelled.dlq")) == 0
    assert capsys.readouterr().out == "No dead letters.\nNo dead letters.\n"

    headers = [(DLQ_REASON, b"poison: empty message"), (DLQ_GROUP, b"g")]
    for _ in range(3):
        asyncio.run(publish(kafka.bootstrap, dlq(ORDER_PLACED), b"", headers))
    assert main(dlq_command(tmp_path, "-n", "2")) == 0
    first = capsys.readouterr().out
    assert first.count("poison: empty message") == 2
    assert first.endswith("(the last 2 of 3 dead letters; -n N for more)\n")
    assert main(dlq_command(tmp_path, "-n", "2")) == 0  # nothing was committed: all again
    assert capsys.readouterr().out == first


def test_no_running_stack_is_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(dlq_command(tmp_path)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("hopshop: no running stack with kafka in ")
    assert f"start one with `uv run hopshop up -d --state-dir {tmp_path}`" in err


def test_a_broker_that_does_not_answer_is_exit_code_1(
    stand_in: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_stack(tmp_path, "127.0.0.1:9", stand_in)  # discard port: nothing listens
    assert main(dlq_command(tmp_path)) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("hopshop: Kafka at 127.0.0.1:9 ")


def test_a_topic_that_is_not_the_shops_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(dlq_command(tmp_path, "--topic", "orders")) == 2
    assert "not one of the shop's topics: 'orders'" in capsys.readouterr().err
