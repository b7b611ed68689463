"""Create the Kafka topics the shop uses (DESIGN.md: topics and their ``.dlq``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

# aiokafka ships no type information.
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import KafkaConnectionError, KafkaError  # type: ignore[import-untyped]

# Error code 36: the topic exists already (a broker that kept its data).
TOPIC_ALREADY_EXISTS = 36


_T = TypeVar("_T")

# How often a running create_topics asks whether it should stop.
_STOP_POLL_SECONDS = 0.1


class TopicError(RuntimeError):
    pass


class StopRequested(Exception):
    """``stop_requested()`` said yes: the topics were abandoned, maybe half made."""


def create_topics(
    bootstrap: str,
    topics: Sequence[str],
    timeout: float,
    stop_requested: Callable[[], bool] = lambda: False,
) -> list[str]:
    """Create the missing ``topics`` (1 partition, replication 1); return the ones created.

    Retries the connection until ``timeout`` seconds pass: a broker may accept TCP
    connections a moment before it answers Kafka requests. ``stop_requested`` is
    polled instead of letting a signal handler raise into the event loop: raised
    there, an exception can leave the loop half made (a traceback at exit).
    """
    # aiokafka logs every failed connection attempt at ERROR; the retries are expected.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    work = _create_topics(bootstrap, list(topics), timeout)
    return asyncio.run(_unless_stopped(work, stop_requested))


async def _unless_stopped(work: Awaitable[_T], stop_requested: Callable[[], bool]) -> _T:
    task = asyncio.ensure_future(work)
    while not task.done():
        if stop_requested():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise StopRequested
        await asyncio.wait({task}, timeout=_STOP_POLL_SECONDS)
    return task.result()


async def _connect(bootstrap: str, patience: float) -> AIOKafkaAdminClient:
    deadline = time.monotonic() + patience
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            return admin
        except (KafkaConnectionError, asyncio.CancelledError) as exc:
            with contextlib.suppress(KafkaError, OSError):
                await admin.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            if time.monotonic() >= deadline:
                raise TopicError(f"the Kafka broker at {bootstrap} does not answer") from None
            await asyncio.sleep(0.1)


async def _create_topics(bootstrap: str, topics: list[str], patience: float) -> list[str]:
    admin = await _connect(bootstrap, patience)
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in topics if topic not in existing]
        if not missing:
            return []
        response = await admin.create_topics([NewTopic(topic, 1, 1) for topic in missing])
        failed = [
            f"{name}: {message or code}"
            for name, code, message in _errors(response)
            if code not in (0, TOPIC_ALREADY_EXISTS)
        ]
        if failed:
            raise TopicError("could not create topics: " + "; ".join(failed))
        return missing
    finally:
        await admin.close()


def _errors(response: object) -> list[tuple[str, int, str | None]]:
    """(topic, error code, message) from any CreateTopicsResponse version."""
    result: list[tuple[str, int, str | None]] = []
    for item in getattr(response, "topic_errors", []):
        name, code = item[0], item[1]
        message = item[2] if len(item) > 2 else None
        result.append((str(name), int(code), message))
    return result
