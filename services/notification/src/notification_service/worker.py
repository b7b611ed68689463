"""The Kafka worker: order and payment events in, customers' notifications out.

Runs as tasks of the service's lifespan (``NOTIFICATION_WORKER_ENABLED``), as
consumer group ``notification`` and OAuth client ``notification-worker``.
hopkit's :class:`~hopkit.consumer.EventConsumer` owns the transaction: it
records the event as processed and calls :func:`make_handler`'s handler in
the same transaction, so a notification and its processed event id commit
together or not at all, and the offset is committed after both.

Outcomes per event:

* stored: the service that owns the fact (order for ``order.*``, billing for
  ``payment.*``, :mod:`notification_service.owners`) confirms it, and the
  customer has one notification of that kind about that order, however often
  the event comes and under whatever event id, even when two copies are
  handled at once (a unique index decides; the later copy is NoEffect);
* not confirmed by its owner (forged, or about another customer's order):
  nobody is told, a warning names the event and the reason, and the event id
  is not recorded (:class:`~hopkit.events.NoEffect`: a forgery may carry the id
  of a genuine event, which must still count). Not retried (a forgery stays
  one) and not dead-lettered (the DLQ holds what is worth replaying;
  forgeries would only bury it);
* the directory, order or billing cannot answer (down, 5xx, refused our
  token): retried with backoff, then dead-lettered with the reason;
* malformed (unknown type, or another topic's, no subject, no order id) or a
  subject the directory does not know (404): dead-lettered at once, nothing
  stored, offset committed.
  An unknown customer is not retried (auth said no; asking again will not
  change that) but it is not dropped either: an event about a user who does
  not exist is either forged or a sign that two services disagree, and the
  DLQ keeps it, with the reason, for someone to look at or replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from hopkit.consumer import EventConsumer, Handler, ensure_topics
from hopkit.events import Envelope, NoEffect, PoisonMessage
from hopkit.logs import annotate
from hopkit.retry import backoff_delay
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from . import service
from .config import Settings
from .directory import UserDirectory
from .messages import TOPICS, claim_from
from .owners import Owners

log = logging.getLogger(__name__)

UNKNOWN_CUSTOMER = "subject unknown to the user directory (404)"


def make_handler(directory: UserDirectory, owners: Owners) -> Handler:
    """The consumer's handler: parse the event, call the service, say what happened."""

    async def handle(session: AsyncSession, envelope: Envelope, record: Any) -> None:
        claim = claim_from(envelope)
        if claim.kind != record.topic:  # news of one kind on another's topic: which is it?
            raise PoisonMessage(f"type {claim.kind!r} does not belong on topic {record.topic!r}")
        annotate(recipient=claim.recipient, order_id=claim.order_id)
        try:
            stored = await service.notify_about(session, claim, owners, directory)
        except service.UnknownCustomer:
            raise PoisonMessage(UNKNOWN_CUSTOMER) from None
        if stored is None:
            # Unconfirmed, or told already: the event id stays unrecorded
            # (see hopkit.events.NoEffect).
            raise NoEffect("nobody notified")
        annotate(notified=True, notification_id=stored.id)

    return handle


class NotificationWorker:
    """Creates the topics it reads (once the broker answers), then consumes until stopped."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        directory: UserDirectory,
        owners: Owners,
    ) -> None:
        assert settings.kafka_bootstrap is not None  # Settings refuses a worker without one
        self._bootstrap = settings.kafka_bootstrap
        self.consumer = EventConsumer(
            settings.kafka_bootstrap,
            settings.consumer_group,
            TOPICS,
            make_handler(directory, owners),
            sessions,
            max_attempts=settings.consumer_max_attempts,
            backoff=(settings.consumer_backoff_first, settings.consumer_backoff_max),
            consumer_options={
                "session_timeout_ms": settings.consumer_session_timeout_ms,
                "heartbeat_interval_ms": settings.consumer_heartbeat_interval_ms,
                "client_id": settings.consumer_group,
            },
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Returns at once: the service answers HTTP while the broker is still away."""
        self._task = asyncio.create_task(self._run(), name="notification-worker")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.consumer.stop()

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                # A consumer subscribed to a topic that does not exist yet may not see it
                # for minutes (metadata refresh); topics made first are seen at once.
                await ensure_topics(self._bootstrap, TOPICS, broker_wait=10.0)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # KafkaError, OSError ...: the worker outlives any outage
                attempt += 1
                log.warning(
                    "Kafka not answering; the notification worker waits",
                    extra={"error": type(exc).__name__, "attempt": attempt},
                )
                await asyncio.sleep(backoff_delay((1.0, 10.0), attempt))
        await self.consumer.start()
        log.info("notification worker consuming", extra={"topics": list(TOPICS)})
