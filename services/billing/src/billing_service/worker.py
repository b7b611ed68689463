"""The billing worker: consumes ``order.placed``, relays the outbox. Runs inside the service.

Both run as background tasks of the service process, started and stopped by
its lifespan (``BILLING_WORKER``). The consumer (group ``billing``) hands
each event to :meth:`BillingWorker.handle`, a thin entry point that parses the
event and calls :func:`billing_service.service.settle_order`; hopkit's
:class:`~hopkit.consumer.EventConsumer` records the event id in the same
transaction, commits the offset after it, retries with backoff and
dead-letters what still fails; an order service (or auth server) that is away
is waited out instead (:class:`~billing_service.orders.OrderServiceError` is a
:class:`~hopkit.events.DependencyUnavailable`), so no good order goes to the
DLQ. The relay publishes the payment events the settlements (and refunds,
:func:`billing_service.service.refund_order`) put in the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from hopkit.consumer import EventConsumer, ensure_topics
from hopkit.events import (
    ORDER_PLACED,
    PAYMENT_FAILED,
    PAYMENT_REFUNDED,
    PAYMENT_SUCCEEDED,
    Envelope,
    NoEffect,
    PoisonMessage,
)
from hopkit.logs import annotate
from hopkit.outbox import OutboxRelay
from hopkit.retry import backoff_delay
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from . import service
from .config import CONSUMER_GROUP, Settings
from .orders import OrderClient, UnusableOrder
from .provider import InvalidCharge, SimulatedProvider
from .schemas import OrderPlacedData

log = logging.getLogger(__name__)

# What billing consumes and what its relay publishes: made before either needs them.
TOPICS = (ORDER_PLACED, PAYMENT_SUCCEEDED, PAYMENT_FAILED, PAYMENT_REFUNDED)


class BillingWorker:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        orders: OrderClient,
        provider: SimulatedProvider,
    ) -> None:
        if settings.kafka_bootstrap is None:
            raise ValueError("the billing worker needs HOPSHOP_KAFKA_BOOTSTRAP")
        self._bootstrap = settings.kafka_bootstrap
        self._orders = orders
        self._provider = provider
        self.relay = OutboxRelay(
            self._bootstrap,
            sessions,
            poll_interval=settings.outbox_poll_interval,
            client_id="billing-outbox-relay",
        )
        self.consumer = EventConsumer(
            self._bootstrap,
            CONSUMER_GROUP,
            [ORDER_PLACED],
            self.handle,
            sessions,
            max_attempts=settings.worker_max_attempts,
            backoff=(settings.worker_backoff_first, settings.worker_backoff_max),
            consumer_options={
                "session_timeout_ms": settings.kafka_session_timeout_ms,
                "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
                "client_id": "billing-worker",
            },
        )
        self._starting: asyncio.Task[None] | None = None

    async def handle(self, session: AsyncSession, envelope: Envelope, record: Any) -> None:
        """One ``order.placed`` event: take the order id from it, settle the order."""
        if envelope.type != ORDER_PLACED:
            raise PoisonMessage(f"type is {envelope.type[:50]!r}, expected {ORDER_PLACED!r}")
        try:
            data = OrderPlacedData.model_validate(envelope.data)
        except ValidationError:
            raise PoisonMessage("data.order_id is missing or not an order id") from None
        annotate(order_id=data.order_id)
        try:
            settled = await service.settle_order(
                session,
                order_id=data.order_id,
                event_id=envelope.event_id,
                orders=self._orders,
                provider=self._provider,
            )
        except (UnusableOrder, InvalidCharge) as exc:
            raise PoisonMessage(f"order {data.order_id} cannot be charged: {exc}") from None
        annotate(settlement=settled.outcome.value)
        if settled.invoice is not None:
            annotate(invoice_id=settled.invoice.id, customer_id=settled.invoice.customer_id)
        if not settled.charged:
            # Nothing stored: the event id stays unrecorded (see hopkit.events.NoEffect).
            raise NoEffect(settled.outcome.value)

    async def start(self) -> None:
        """Relay at once; consume once the topics exist. Returns at once, broker or not."""
        await self.relay.start()
        self._starting = asyncio.create_task(self._start_consumer(), name="billing-worker-start")

    async def stop(self) -> None:
        starting, self._starting = self._starting, None
        if starting is not None:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        await self.consumer.stop()
        await self.relay.stop()

    async def _start_consumer(self) -> None:
        """Make sure the topics (and their DLQs) exist, then join the consumer group.

        A consumer subscribed to a topic that does not exist yet would only
        notice it at its next metadata refresh (minutes), so topics come first.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                await ensure_topics(self._bootstrap, TOPICS, broker_wait=10.0)
                break
            except Exception as exc:  # the broker may come later; keep trying
                delay = backoff_delay((1.0, 15.0), attempt)
                log.warning(
                    "Kafka topics not ready; retrying",
                    extra={"error": type(exc).__name__, "retry_in": round(delay, 1)},
                )
                await asyncio.sleep(delay)
        await self.consumer.start()
        log.info("billing worker consuming", extra={"topic": ORDER_PLACED})
