"""The Kafka entry point: payment events from billing, checked with billing, then applied.

The consumer (:class:`hopkit.consumer.EventConsumer`, group ``order``) runs
this handler in a transaction that also records the event id, so a
redelivered event is skipped, and the effect, the outbox row and the record
commit together. Inventory is called with the order service's own
client-credentials token: no user is behind a Kafka event.

No payment event is believed. Before anything changes, billing is asked what
it recorded for the order (:mod:`order_service.billing`), and only what it
confirms is applied, with billing's amount: a ``payment.succeeded`` needs a
payment billing recorded as succeeded, a ``payment.failed`` one recorded as
failed, and whatever the event says about the invoice or the amount must
match. The call comes before the handler's first write, so no database write
transaction waits on billing.

A confirmed ``payment.succeeded`` for an order cancelled meanwhile (the
customer or the expiry job won the race with the payment) is refunded at
billing (:func:`order_service.service.confirm_payment`); only once billing has
vouched for the payment, so a forged event refunds nothing. That call too
comes before any write, and billing not answering it is retried like the check.

An event billing does not confirm is dropped: a warning line (event id,
type, reason; nothing from the event's data) and the event recorded as
processed. Not retried, because a forged event stays forged; not
dead-lettered either, because the DLQ is for events worth replaying once
something is fixed, and an attacker's events would only bury those. Billing
not answering is different: that is raised, and the consumer retries with
backoff.

What no retry can fix in a confirmed event (no order id, an order that does
not exist, a payment that does not match the order, a reservation already
released) is a poison message and goes to the dead-letter topic: order and
billing disagree, and someone must look.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from hopkit.consumer import Handler
from hopkit.events import PAYMENT_FAILED, PAYMENT_SUCCEEDED, Envelope, NoEffect, PoisonMessage
from hopkit.logs import annotate
from hopkit.problems import Problem
from sqlalchemy.ext.asyncio import AsyncSession

from . import service
from .billing import FAILED, SUCCEEDED, Billing, Payment
from .inventory import Inventory
from .schemas import ORDER_ID_PATTERN

log = logging.getLogger(__name__)

TOPICS = (PAYMENT_SUCCEEDED, PAYMENT_FAILED)
_EXPECTED = {PAYMENT_SUCCEEDED: SUCCEEDED, PAYMENT_FAILED: FAILED}
_ORDER_ID = re.compile(ORDER_ID_PATTERN)


def payment_handler(inventory: Inventory, billing: Billing) -> Handler:
    """The handler for :data:`TOPICS`: checks with ``billing``, then settles at ``inventory``."""

    async def handle(session: AsyncSession, envelope: Envelope, record: Any) -> None:
        if record.topic not in _EXPECTED:
            raise PoisonMessage(f"order does not handle topic {record.topic}")
        if envelope.type != record.topic:  # a payment.failed on payment.succeeded: which is it?
            raise PoisonMessage(f"type is not {record.topic!r}, the topic it came on")
        order_id = _order_id(envelope)
        annotate(order_id=order_id)
        payment = await billing.payment(order_id)  # before any write: see the module docstring
        refusal = unconfirmed(record.topic, envelope, payment)
        if refusal is not None:
            log.warning(
                "payment event not confirmed by billing; dropped",
                extra={"event_id": envelope.event_id, "type": record.topic, "reason": refusal},
            )
            annotate(verified=False)
            raise NoEffect(refusal)  # its id stays unrecorded: see hopkit.events.NoEffect
        assert payment is not None  # unconfirmed() said so
        annotate(verified=True, invoice_id=payment.invoice_id)
        try:
            if record.topic == PAYMENT_SUCCEEDED:
                changed = await service.confirm_payment(
                    session,
                    order_id,
                    inventory,
                    billing,
                    amount_cents=payment.amount_cents,
                    currency=payment.currency,
                )
            else:
                changed = await service.decline_payment(session, order_id, inventory)
        except Problem as problem:
            if problem.status < 500:  # order and billing disagree: retrying cannot help
                raise PoisonMessage(f"{problem.title} (order {order_id})") from None
            raise
        annotate(changed=changed)
        if not changed:
            raise NoEffect("the order already shows this payment")

    return handle


def unconfirmed(topic: str, envelope: Envelope, payment: Payment | None) -> str | None:
    """Why billing's record does not confirm the event; None when it does.

    The reasons name fields, never their values: they go to the log.
    """
    if payment is None:
        return "billing has no payment for the order"
    if payment.status != _EXPECTED[topic]:
        return f"billing recorded the payment as {payment.status}"
    claims = {
        "invoice_id": _optional(envelope, "invoice_id", str),
        "amount_cents": _optional(envelope, "amount_cents", int),
        "currency": _optional(envelope, "currency", str),
    }
    for name, claimed in claims.items():
        if claimed is not None and claimed != getattr(payment, name):
            return f"data.{name} is not what billing recorded"
    return None


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
