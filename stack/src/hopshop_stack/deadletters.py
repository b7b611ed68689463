"""`hopshop dlq`: what the stack's consumers dead-lettered, one line each, read-only.

A consumer (hopkit.consumer) copies an event it can never handle to
``<topic>.dlq`` with headers saying why (``x-dlq-reason``), where it came from
(``x-dlq-topic``, ``x-dlq-partition``, ``x-dlq-offset``), which consumer group
gave up (``x-dlq-group``) and when (``x-dlq-failed-at``). An outage never
dead-letters anything (a transient failure waits instead), so an empty DLQ
after one is the point to show; a forged or poison event is what ends up here.

The DLQ topics are read from their beginning without a consumer group: no
offset is committed, so reading changes nothing in the stack. The record's
value is never printed: a forged event may carry anything, a token someone
pasted included. Only an envelope that parses (hopkit.events.Envelope.parse,
which refuses one carrying a token's shape) lends its type and event id; the
reason, written by our consumer, is printed shortened and with anything shaped
like a credential redacted, as every header is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

# aiokafka ships no type information.
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]
from hopkit.consumer import (
    DLQ_FAILED_AT,
    DLQ_GROUP,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_REASON,
    DLQ_TOPIC,
)
from hopkit.events import ALL_TOPICS, Envelope, dlq, header
from hopkit.redact import redact_credentials

from . import state
from .lifecycle import RUN, error, live_components, state_dir_hint

OK = 0
FAILED = 1
NO_STACK = 2

#: How long reading every DLQ may take: the broker is on this machine, and a DLQ is small.
READ_TIMEOUT = 10.0
#: A poll's wait for more records of a partition known to have them.
_POLL_MS = 500
#: As `logs --trace` and the demo: a line fits a projector.
MAX_WIDTH = 100
# The reason gets at least this much of its first line, however long the line's start.
_MIN_REASON = 20
# Ours are at most 500 characters (hopkit.consumer); a forged one is cut shorter.
_MAX_REASON = 300


class ReadError(RuntimeError):
    """The DLQ topics could not be read; the message is one line naming the broker."""


@dataclass(frozen=True)
class DeadLetter:
    """One record of a ``.dlq`` topic, as far as it may be shown."""

    dlq_topic: str
    dlq_offset: int
    when: datetime | None
    group: str
    source: str  # topic[partition]@offset of the original record
    event: str  # the event id's first block (its type first if not the topic's), or why none
    reason: str

    def lines(self, width: int = MAX_WIDTH) -> list[str]:
        """``when  group  topic[p]@offset  event  reason``, in lines of at most ``width``.

        One line when it fits; else the reason goes on, indented, as `logs --trace`
        wraps a token's claims: a line fits a projector. The date goes without its
        year, in local time.
        """
        when = self.when.astimezone().strftime("%m-%d %H:%M:%S") if self.when else "?"
        head = f"{when}  {self.group}  {self.source}  {self.event}  "
        return textwrap.wrap(
            _cut(self.reason, _MAX_REASON),
            width=max(width, len(head) + _MIN_REASON),
            initial_indent=head,
            subsequent_indent="    ",
            break_on_hyphens=False,
        )


def dead_letters(
    state_dir: Path,
    topic: str | None = None,
    limit: int = 50,
    out: TextIO | None = None,
    timeout: float = READ_TIMEOUT,
) -> int:
    """Print the last ``limit`` dead letters of the running stack (of ``topic`` only, if given).

    Exit code: 0 printed (none included), 1 the broker could not be read,
    2 no stack with a running kafka, or not one of the shop's topics.
    """
    out = out or sys.stdout  # looked up now: a test (or a caller) may have replaced it
    hint = state_dir_hint(state_dir)
    state_dir = state_dir.resolve()
    topics = list(ALL_TOPICS)
    if topic is not None:
        wanted = topic.removesuffix(".dlq")
        if wanted not in ALL_TOPICS:
            error(f"not one of the shop's topics: {topic!r} (topics: {', '.join(ALL_TOPICS)})")
            return NO_STACK
        topics = [wanted]
    try:
        found = state.load(state_dir)
    except state.StateError as exc:
        error(str(exc))
        return NO_STACK
    running = {c.name: c for c in live_components(found)} if found else {}
    if "kafka" not in running:
        error(f"no running stack with kafka in {state_dir}; start one with `{RUN} up -d{hint}`")
        return NO_STACK
    bootstrap = running["kafka"].address
    try:
        letters = read_dead_letters(bootstrap, [dlq(name) for name in topics], timeout)
    except ReadError as exc:
        error(str(exc))
        return FAILED
    if not letters:
        print("No dead letters.", file=out)
        return OK
    shown = letters[-limit:] if limit else []
    for letter in shown:
        for line in letter.lines():
            print(line, file=out)
    if len(shown) < len(letters):
        print(f"(the last {len(shown)} of {len(letters)} dead letters; -n N for more)", file=out)
    return OK


def read_dead_letters(
    bootstrap: str, topics: Sequence[str], timeout: float = READ_TIMEOUT
) -> list[DeadLetter]:
    """Every record of ``topics`` (``.dlq`` topics), oldest first; a missing topic has none."""
    # aiokafka logs every failed connection attempt at ERROR; the message below says it once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(asyncio.wait_for(_read(bootstrap, list(topics)), timeout))
    except TimeoutError:
        raise ReadError(f"Kafka at {bootstrap} did not answer within {timeout:g} s") from None
    except (KafkaError, OSError) as exc:
        raise ReadError(f"Kafka at {bootstrap} could not be read: {exc!r}") from None


async def _read(bootstrap: str, topics: list[str]) -> list[DeadLetter]:
    # No group: nothing is committed, no group is joined, the consumers in the stack see
    # no one new. Every partition is read from its start to the end it had when we came.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=5000,
    )
    try:
        await consumer.start()  # inside: a start that fails leaves connections to close
        existing = await consumer.topics()
        partitions = [
            TopicPartition(topic, number)
            for topic in topics
            if topic in existing
            for number in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        letters: list[DeadLetter] = []
        for tp in partitions:
            letters += await _read_partition(consumer, tp, ends[tp])
    finally:
        with contextlib.suppress(KafkaError, OSError):
            await consumer.stop()
    letters.sort(key=lambda letter: (letter.when or _EPOCH, letter.dlq_topic, letter.dlq_offset))
    return letters


_EPOCH = datetime.fromtimestamp(0, UTC)


async def _read_partition(consumer: Any, tp: TopicPartition, end: int) -> list[DeadLetter]:
    letters: list[DeadLetter] = []
    while await consumer.position(tp) < end:
        try:
            # One at a time: aiokafka raises on a record it cannot decode (a header key
            # that is not UTF-8, which anyone may write), and the position then names it.
            batch = await consumer.getmany(tp, timeout_ms=_POLL_MS, max_records=1)
        except UnicodeDecodeError:
            offset = await consumer.position(tp)
            letters.append(_undecodable(tp, offset))
            consumer.seek(tp, offset + 1)
            continue
        letters += [_letter(record) for record in batch.get(tp, []) if record.offset < end]
    return letters


def _letter(record: ConsumerRecord) -> DeadLetter:
    headers = record.headers or ()

    def shown(name: str, limit: int) -> str:
        return _cut(_printable(header(headers, name) or "?"), limit)

    topic, partition, offset = shown(DLQ_TOPIC, 40), shown(DLQ_PARTITION, 10), shown(DLQ_OFFSET, 20)
    return DeadLetter(
        dlq_topic=record.topic,
        dlq_offset=record.offset,
        when=_failed_at(header(headers, DLQ_FAILED_AT), record.timestamp),
        group=shown(DLQ_GROUP, 30),
        source=f"{topic}[{partition}]@{offset}",
        event=_event(record.value, topic),
        reason=_printable(header(headers, DLQ_REASON) or "(no reason given)"),
    )


def _undecodable(tp: TopicPartition, offset: int) -> DeadLetter:
    return DeadLetter(
        dlq_topic=tp.topic,
        dlq_offset=offset,
        when=None,
        group="?",
        source=f"{tp.topic}[{tp.partition}]@{offset}",
        event="(undecodable record)",
        reason="this dead letter itself cannot be decoded (a header key that is not UTF-8)",
    )


def _event(value: bytes | None, topic: str) -> str:
    """A valid envelope's event id (its first block, as `logs --trace` shows a uuid), after its
    type when that is not ``topic``'s (a forgery's tell); else what the value is, in words.

    Never a part of the value itself: parse refuses an envelope with a token's
    shape in any field, and the type is a field of a valid envelope only.
    """
    if not value:
        return "(no copy)"  # the consumer dead-lettered a note, not the record
    try:
        envelope = Envelope.parse(value)
    except Exception:  # parsing is pure: anything it raises means "not an envelope"
        return "(not an event)"
    if envelope.type == topic:
        return envelope.event_id[:8]
    return f"{_cut(_printable(envelope.type), 30)} {envelope.event_id[:8]}"


def _failed_at(stamp: str | None, timestamp_ms: int | None) -> datetime | None:
    """When the consumer gave up: its header, else when the dead letter was written."""
    if stamp:
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(timestamp_ms, int) and timestamp_ms >= 0:
        with contextlib.suppress(ValueError, OverflowError, OSError):
            return datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return None


def _printable(text: str) -> str:
    # A header is anyone's text: no control character (a terminal escape) reaches the
    # screen, and nothing shaped like a credential either.
    cleaned = "".join(char if char.isprintable() else " " for char in text)
    return redact_credentials(" ".join(cleaned.split()))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
