"""What a customer is told about an order or payment event: pure logic, no I/O.

:func:`claim_from` checks that an event can become a notification at all
(a type we handle, a subject that is a user id, an order id) and says why
not otherwise, as a :class:`~hopkit.events.PoisonMessage`: no retry makes a
malformed event handleable, so it belongs in the DLQ at once. What it
returns is a :class:`Claim`, not yet believed: the worker checks it with the
service that owns it (:mod:`notification_service.owners`), and
:func:`note_for` writes the message from that service's answer, never from
the event's data. The text is built only from values we recognise: a
free-form string (an unknown cancellation reason, say) never reaches a
customer's screen.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hopkit.events import (
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    PAYMENT_FAILED,
    PAYMENT_REFUNDED,
    PAYMENT_SUCCEEDED,
    Envelope,
    PoisonMessage,
)

TOPICS: tuple[str, ...] = (
    ORDER_CONFIRMED,
    ORDER_CANCELLED,
    PAYMENT_SUCCEEDED,
    PAYMENT_FAILED,
    PAYMENT_REFUNDED,
)
"""The events the worker turns into notifications."""

# A user id as the auth service issues them (uuid4 today), and nothing that could
# change the directory URL's path: no '/', no '.' or '..' segment.
_USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}")
_ORDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_CURRENCY = re.compile(r"[A-Z]{3}")

_CANCELLED_BECAUSE = {
    "payment_declined": "was cancelled: payment declined",
    "customer": "was cancelled at your request",
    "expired": "was cancelled: it was not paid in time",
}
_PAYMENT_FAILED_BECAUSE = {
    "payment_declined": "was declined",
    "declined": "was declined",
    "card_declined": "was declined",
}


@dataclass(frozen=True, slots=True)
class Claim:
    """What an event says happened (``kind``) to whose (``recipient``) order: not yet believed."""

    event_id: str
    kind: str
    recipient: str
    order_id: str


@dataclass(frozen=True, slots=True)
class CustomerNote:
    """A notification to be: for whom, about which order, saying what."""

    event_id: str
    kind: str
    recipient: str
    order_id: str
    message: str


def claim_from(envelope: Envelope) -> Claim:
    """What ``envelope`` claims; :class:`PoisonMessage` if it cannot become a notification."""
    if envelope.type not in TOPICS:
        raise PoisonMessage(f"event type {envelope.type!r} is not one this worker handles")
    recipient = envelope.subject
    if recipient is None:
        raise PoisonMessage("subject: missing; an order event names its customer")
    if not _USER_ID.fullmatch(recipient):
        raise PoisonMessage("subject: not a user id")
    return Claim(
        event_id=envelope.event_id,
        kind=envelope.type,
        recipient=recipient,
        order_id=_order_id(envelope.data),
    )


def note_for(claim: Claim, facts: Mapping[str, Any]) -> CustomerNote:
    """The notification for ``claim``, worded from ``facts``: what the owning service answered."""
    return CustomerNote(
        event_id=claim.event_id,
        kind=claim.kind,
        recipient=claim.recipient,
        order_id=claim.order_id,
        message=compose(claim.kind, claim.order_id, facts),
    )


def compose(kind: str, order_id: str, data: Mapping[str, Any]) -> str:
    """The sentence the customer reads."""
    order = f"Your order {order_id}"
    if kind == ORDER_CONFIRMED:
        return f"{order} is confirmed."
    if kind == ORDER_CANCELLED:
        because = _CANCELLED_BECAUSE.get(_text(data.get("reason")), "was cancelled")
        return f"{order} {because}."
    amount = _amount(data)
    of = f" of {amount}" if amount else ""
    if kind == PAYMENT_SUCCEEDED:
        return f"We received your payment{of} for order {order_id}."
    if kind == PAYMENT_FAILED:
        because = _PAYMENT_FAILED_BECAUSE.get(_text(data.get("reason")), "failed")
        return f"Your payment{of} for order {order_id} {because}."
    if kind == PAYMENT_REFUNDED:
        # Billing refunds only a payment whose order was cancelled before it was paid.
        return f"{order} was cancelled; your payment{of} was refunded."
    raise PoisonMessage(f"event type {kind!r} is not one this worker handles")


def _order_id(data: Mapping[str, Any]) -> str:
    value = data.get("order_id")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        value = str(value)
    if not isinstance(value, str) or not _ORDER_ID.fullmatch(value):
        raise PoisonMessage("data.order_id: missing or not an order id")
    return value


def _amount(data: Mapping[str, Any]) -> str | None:
    """``12.50 EUR`` from ``amount_cents`` and ``currency``, when both are sound."""
    cents, currency = data.get("amount_cents"), data.get("currency")
    if isinstance(cents, bool) or not isinstance(cents, int) or cents < 0:
        return None
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        return None
    return f"{cents // 100}.{cents % 100:02d} {currency}"


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
