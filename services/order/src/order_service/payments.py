"""The Kafka entry point: payment events from billing, applied through the service layer.

The consumer (:class:`hopkit.consumer.EventConsumer`, group ``order``) runs
this handler in a transaction that also records the event id, so a
redelivered event is skipped, and the effect, the outbox row and the record
commit together. Inventory is called with the order service's own
client-credentials token: no user is behind a Kafka event.

What no retry can fix (no order id, an order that does not exist, a payment
that does not match, a reservation already released) is a poison message and
goes to the dead-letter topic; a failure that may pass (inventory down) is
raised, and the consumer retries it.
"""

from __future__ import annotations

import re
from typing import Any

from hopkit.consumer import Handler
from hopkit.events import PAYMENT_FAILED, PAYMENT_SUCCEEDED, Envelope, PoisonMessage
from hopkit.logs import annotate
from hopkit.problems import Problem
from sqlalchemy.ext.asyncio import AsyncSession

from . import service
from .inventory import Inventory
from .schemas import ORDER_ID_PATTERN

TOPICS = (PAYMENT_SUCCEEDED, PAYMENT_FAILED)
_ORDER_ID = re.compile(ORDER_ID_PATTERN)


def payment_handler(inventory: Inventory) -> Handler:
    """The handler for :data:`TOPICS`, calling inventory as ``inventory`` is set up to."""

    async def handle(session: AsyncSession, envelope: Envelope, record: Any) -> None:
        order_id = _order_id(envelope)
        annotate(order_id=order_id)
        try:
            if record.topic == PAYMENT_SUCCEEDED:
                changed = await service.confirm_payment(
                    session,
                    order_id,
                    inventory,
                    amount_cents=_optional(envelope, "amount_cents", int),
                    currency=_optional(envelope, "currency", str),
                )
            elif record.topic == PAYMENT_FAILED:
                changed = await service.decline_payment(session, order_id, inventory)
            else:
                raise PoisonMessage(f"order does not handle topic {record.topic}")
        except Problem as problem:
            if problem.status < 500:  # the event itself is wrong: retrying cannot help
                raise PoisonMessage(f"{problem.title} (order {order_id})") from None
            raise
        annotate(changed=changed)

    return handle


def _order_id(envelope: Envelope) -> str:
    value = envelope.data.get("order_id")
    if not isinstance(value, str) or not _ORDER_ID.fullmatch(value):
        raise PoisonMessage("data.order_id is missing or not an order id")
    return value


def _optional(envelope: Envelope, name: str, kind: type[Any]) -> Any:
    value = envelope.data.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise PoisonMessage(f"data.{name} has the wrong type")
    return value
