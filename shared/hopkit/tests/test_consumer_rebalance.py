"""A rebalance during an outage wait (real broker, real SQLite).

A member waiting out an outage keeps its group membership; if a rebalance
gives the waiting event's partition to another member meanwhile, it stops
retrying that event (the new owner does: calling the dependency twice and
failing the offset commit would be all the old one achieves). Which member
gets the partition is steered with an assignor of our own, so both cases
are tested, not whichever the group picked.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.coordinator.assignors.abstract import (  # type: ignore[import-untyped]
    AbstractPartitionAssignor,
)
from aiokafka.coordinator.protocol import (  # type: ignore[import-untyped]
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)
from hopkit.consumer import EventConsumer, ensure_topics
from hopkit.events import DependencyUnavailable, dlq
from hopkit.testing import KafkaBroker
from kafka_testing import (
    committed,
    count,
    effects_table,
    end_offset,
    eventually,
    new_topic,
    processed_events,
    publish,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_consumer import FAST_GROUP, event, record_effect

Sessions = async_sessionmaker[AsyncSession]
REASSIGNED = "partition reassigned while its event waited; its new owner retries it"


class _Steered(AbstractPartitionAssignor):  # type: ignore[misc]
    """Every partition to the member that asks for them in its join metadata.

    Members of one group must share an assignor name; the subclasses differ only
    in what they ask for, and count the assignments they receive.
    """

    name = "hopkit-test-steered"
    version = 0
    asks = b""
    assignments: list[list[Any]]

    @classmethod
    def assign(
        cls, cluster: Any, members: Mapping[str, Any]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        takers = sorted(m for m, meta in members.items() if meta.user_data == b"take")
        taker = takers[0] if takers else sorted(members)[0]
        result = {}
        for member, meta in members.items():
            topics = []
            if member == taker:
                topics = [
                    (topic, sorted(cluster.partitions_for_topic(topic) or ()))
                    for topic in sorted(meta.subscription)
                ]
            result[member] = ConsumerProtocolMemberAssignment(cls.version, topics, b"")
        return result

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(cls.version, list(topics), cls.asks)

    @classmethod
    def on_assignment(cls, assignment: Any) -> None:
        cls.assignments.append(list(assignment.assignment))


def steered(asks: bytes) -> type[_Steered]:
    """A fresh assignor class per member (its own assignment log)."""
    return type("Steered", (_Steered,), {"asks": asks, "assignments": []})


class Down(DependencyUnavailable):
    """The dependency that never comes back (or comes back when the test says)."""


def member(
    bootstrap: str, group: str, topic: str, handler: Any, sessions: Sessions, assignor: type
) -> EventConsumer:
    return EventConsumer(
        bootstrap,
        group,
        [topic],
        handler,
        sessions,
        max_attempts=1,
        backoff=(0.05, 0.1),
        consumer_options={**FAST_GROUP, "partition_assignment_strategy": (assignor,)},
    )


def reassigned_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == REASSIGNED]


async def test_a_waiting_member_that_loses_the_partition_stops_and_the_new_owner_applies_it(
    kafka: KafkaBroker, sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    group = f"group-{uuid.uuid4().hex[:8]}"
    waiting_calls = 0
    owner_calls = 0

    async def down(session: AsyncSession, envelope: Any, record: Any) -> None:
        nonlocal waiting_calls
        waiting_calls += 1
        raise Down("billing unreachable")

    async def up(session: AsyncSession, envelope: Any, record: Any) -> None:
        nonlocal owner_calls
        owner_calls += 1
        await record_effect(session, envelope)

    caplog.set_level(logging.INFO, logger="hopkit.consumer")
    waiting = member(kafka.bootstrap, group, topic, down, sessions, steered(b""))
    taker = steered(b"take")
    newcomer = member(kafka.bootstrap, group, topic, up, sessions, taker)
    await waiting.start()
    try:
        await publish(kafka.bootstrap, topic, event("o-moved").to_bytes())
        await eventually(lambda: _true(waiting_calls >= 3), within=20, what="the outage wait")
        await newcomer.start()
        try:
            await eventually(
                lambda: _committed_is(kafka.bootstrap, group, topic, 1),
                within=20,
                what="the new owner's commit",
            )
            await eventually(
                lambda: _true(bool(reassigned_lines(caplog))),
                what="the waiting member's reassignment line",
            )
            calls_then = waiting_calls
            await asyncio.sleep(1.0)
            assert waiting_calls == calls_then  # it stopped retrying the event it lost
        finally:
            await newcomer.stop()
    finally:
        await waiting.stop()
    assert taker.assignments[-1] == [(topic, [0])]
    assert owner_calls == 1
    assert await count(sessions, effects_table) == 1
    assert await count(sessions, processed_events) == 1
    assert await end_offset(kafka.bootstrap, dlq(topic)) == 0
    [line] = reassigned_lines(caplog)
    assert line.levelname == "INFO"
    assert (line.topic, line.partition, line.offset) == (topic, 0, 0)  # type: ignore[attr-defined]
    # Not a failure: no consumer restart, no backoff.
    assert not [r for r in caplog.records if r.getMessage() == "event consumer failed; retrying"]


async def test_a_waiting_member_that_keeps_the_partition_goes_on_waiting_and_applies_it(
    kafka: KafkaBroker, sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    group = f"group-{uuid.uuid4().hex[:8]}"
    back = False
    waiting_calls = 0
    other_calls = 0

    async def until_back(session: AsyncSession, envelope: Any, record: Any) -> None:
        nonlocal waiting_calls
        waiting_calls += 1
        if not back:
            raise Down("billing unreachable")
        await record_effect(session, envelope)

    async def other(session: AsyncSession, envelope: Any, record: Any) -> None:
        nonlocal other_calls
        other_calls += 1
        await record_effect(session, envelope)

    caplog.set_level(logging.INFO, logger="hopkit.consumer")
    keeper = steered(b"take")
    bystander = steered(b"")
    waiting = member(kafka.bootstrap, group, topic, until_back, sessions, keeper)
    newcomer = member(kafka.bootstrap, group, topic, other, sessions, bystander)
    await waiting.start()
    try:
        await publish(kafka.bootstrap, topic, event("o-kept").to_bytes())
        await eventually(lambda: _true(waiting_calls >= 3), within=20, what="the outage wait")
        await newcomer.start()
        try:
            # The rebalance is over once the newcomer got its (empty) share.
            await eventually(
                lambda: _true(bool(bystander.assignments)), within=20, what="the rebalance"
            )
            assert bystander.assignments == [[]]
            assert len(keeper.assignments) >= 2 and keeper.assignments[-1] == [(topic, [0])]
            calls_then = waiting_calls
            await eventually(
                lambda: _true(waiting_calls > calls_then + 2), what="retries after the rebalance"
            )
            back = True
            await eventually(
                lambda: _committed_is(kafka.bootstrap, group, topic, 1),
                what="the commit once the dependency is back",
            )
        finally:
            await newcomer.stop()
    finally:
        await waiting.stop()
    assert other_calls == 0
    assert reassigned_lines(caplog) == []
    assert await count(sessions, effects_table) == 1
    assert await end_offset(kafka.bootstrap, dlq(topic)) == 0


async def test_records_a_rebalance_hands_out_during_the_wait_poll_are_not_skipped(
    kafka: KafkaBroker, sessions: Sessions
) -> None:
    # A rebalance completing inside the wait's poll assigns partitions that are not paused
    # (aiokafka makes their state afresh), so that poll returns their records. The real
    # consumer below sees every poll that way; the records must stay where they were.
    topic = new_topic()
    await ensure_topics(kafka.bootstrap, [topic])
    for order in ("o-1", "o-2"):
        await publish(kafka.bootstrap, topic, event(order).to_bytes())
    group = f"group-{uuid.uuid4().hex[:8]}"
    waiting = EventConsumer(kafka.bootstrap, group, [topic], _never, sessions)
    polled = _FreshlyAssignedAtEachPoll(
        topic,
        bootstrap_servers=kafka.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **FAST_GROUP,
    )
    await polled.start()
    try:
        waiting._consumer = polled
        await waiting._stay_in_group()
        assert [r.offset for r in polled.handed_out] == [0, 1]  # the poll did return them
        tp = TopicPartition(topic, 0)
        assert await polled.position(tp) == 0  # ... and they are still to be handled
    finally:
        waiting._consumer = None
        await polled.stop()


class _FreshlyAssignedAtEachPoll(AIOKafkaConsumer):  # type: ignore[misc]
    """A real consumer whose every poll meets a completed rebalance (partitions unpaused)."""

    handed_out: list[Any]

    async def getmany(self, *partitions: Any, timeout_ms: int = 0, **options: Any) -> Any:
        self.resume(*self.assignment())
        batches: dict[Any, list[Any]] = {}
        for _ in range(50):  # the group join and the first fetch take a moment
            batches = await super().getmany(*partitions, timeout_ms=200, **options)
            if batches:
                break
        self.handed_out = [record for records in batches.values() for record in records]
        return batches


async def _never(session: AsyncSession, envelope: Any, record: Any) -> None:
    raise AssertionError("not called")


async def _committed_is(bootstrap: str, group: str, topic: str, offset: int) -> bool:
    return await committed(bootstrap, group, topic) == offset


async def _true(value: bool) -> bool:
    return value
