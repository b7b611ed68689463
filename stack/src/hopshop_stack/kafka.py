"""Create the Kafka topics the shop uses (DESIGN.md: topics and their ``.dlq``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

# aiokafka ships no type information.
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import KafkaConnectionError, KafkaError  # type: ignore[import-untyped]

# Error code 36: the topic exists already (a broker that kept its data).
TOPIC_ALREADY_EXISTS = 36

# Kafka's own rule for a topic name (org.apache.kafka.common.internals.Topic). Checked
# here because not every Kafka-protocol broker enforces it (Tansu takes "bad name!").
_LEGAL_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_ILLEGAL_NAMES = frozenset({".", ".."})

_T = TypeVar("_T")

# How often a running create_topics asks whether it should stop.
_STOP_POLL_SECONDS = 0.1

# Closing only drops connections; a bound keeps a wedged one from adding to the wait.
_CLOSE_SECONDS = 2.0


class TopicError(RuntimeError):
    """The topics could not be made; the message is one line naming the broker and the step."""


class StopRequested(Exception):
    """``stop_requested()`` said yes: the topics were abandoned, maybe half made."""


def create_topics(
    bootstrap: str,
    topics: Sequence[str],
    timeout: float,
    stop_requested: Callable[[], bool] = lambda: False,
) -> list[str]:
    """Create the missing ``topics`` (1 partition, replication 1); return the ones created.

    ``timeout`` bounds the whole of it: the connection retries (a broker may accept
    TCP connections a moment before it answers Kafka requests), the topic listing and
    the creation. Every failure, a timeout included, is a :class:`TopicError`.
    ``stop_requested`` is polled instead of letting a signal handler raise into the
    event loop: raised there, an exception can leave the loop half made (a traceback
    at exit).
    """
    wanted = list(dict.fromkeys(topics))
    for topic in wanted:
        if not _LEGAL_NAME.fullmatch(topic) or topic in _ILLEGAL_NAMES:
            raise TopicError(
                f"cannot create topic {topic!r} on Kafka at {bootstrap}: not a legal topic "
                "name (1 to 249 of a-z A-Z 0-9 . _ -, and not '.' or '..')"
            )
    # aiokafka logs every failed connection attempt at ERROR; the retries are expected.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    work = _create_topics(bootstrap, wanted, timeout)
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


async def _create_topics(bootstrap: str, topics: list[str], seconds: float) -> list[str]:
    deadline = asyncio.get_running_loop().time() + seconds

    async def step(work: Awaitable[_T], what: str) -> _T:
        return await _by_deadline(work, deadline, f"Kafka at {bootstrap}", what, seconds)

    admin = await step(_connect(bootstrap), "a connection attempt")
    try:
        existing = set(await step(admin.list_topics(), "a topic listing"))
        missing = [topic for topic in topics if topic not in existing]
        if not missing:
            return []
        request = admin.create_topics([NewTopic(topic, 1, 1) for topic in missing])
        response = await step(request, "a request to create topics")
        refused = refusals(response)
        if refused:
            raise TopicError(f"Kafka at {bootstrap} refused to create {refused}")
        return missing
    finally:
        await _close(admin)


async def _by_deadline(
    work: Awaitable[_T], deadline: float, broker: str, what: str, seconds: float
) -> _T:
    """``await work`` until the loop-time ``deadline`` (``seconds`` after the start);
    any failure becomes a TopicError."""
    scope = asyncio.timeout_at(deadline)
    try:
        async with scope:
            return await work
    except (KafkaError, OSError, TimeoutError) as exc:
        if scope.expired():
            raise TopicError(f"{broker} did not answer {what} within {seconds:g} s") from None
        raise TopicError(f"{broker} failed {what}: {_describe(exc)}") from None


async def _connect(bootstrap: str) -> AIOKafkaAdminClient:
    """Retry until the broker answers; the caller's deadline ends the retries."""
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            return admin
        except KafkaConnectionError:
            await _close(admin)
            await asyncio.sleep(0.1)
        except BaseException:  # stop requested, deadline passed, or another error
            await _close(admin)
            raise


async def _close(admin: AIOKafkaAdminClient) -> None:
    with contextlib.suppress(KafkaError, OSError, TimeoutError):
        async with asyncio.timeout(_CLOSE_SECONDS):
            await admin.close()


def refusals(response: object) -> str:
    """The topics a CreateTopicsResponse (any version) refused, as one line; "" if none."""
    failed = []
    for item in getattr(response, "topic_errors", []):
        name, code = str(item[0]), int(item[1])
        message = item[2] if len(item) > 2 else None
        if code not in (0, TOPIC_ALREADY_EXISTS):
            failed.append(f"topic {name!r} (error {code}{': ' + message if message else ''})")
    return ", ".join(failed)


def _describe(exc: BaseException) -> str:
    """One line; aiokafka's errors name their class already, OSError's do not."""
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    if not text:
        return name
    return text if name in text else f"{name}: {text}"
