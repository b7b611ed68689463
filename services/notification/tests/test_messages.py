"""What customers are told, and which events cannot become a notification (pure logic).

The words come from the owning service's answer (``facts``), never from the event.
"""

from __future__ import annotations

from typing import Any

import pytest
from hopkit.events import Envelope, PoisonMessage
from notification_service.messages import claim_from, compose, note_for

ALICE = "5b0c3f7e-1d2a-4c8b-9e6f-0a1b2c3d4e5f"


def envelope(type_: str, subject: str | None = ALICE, **data: Any) -> Envelope:
    return Envelope.new(type_, "order", subject, {"order_id": "ord_1", **data})


@pytest.mark.parametrize(
    ("kind", "facts", "text"),
    [
        ("order.confirmed", {}, "Your order ord_1 is confirmed."),
        (
            "order.cancelled",
            {"reason": "payment_declined"},
            "Your order ord_1 was cancelled: payment declined.",
        ),
        (
            "order.cancelled",
            {"reason": "customer"},
            "Your order ord_1 was cancelled at your request.",
        ),
        (
            "order.cancelled",
            {"reason": "expired"},
            "Your order ord_1 was cancelled: it was not paid in time.",
        ),
        # A reason we do not know is not repeated to the customer.
        ("order.cancelled", {"reason": "<script>"}, "Your order ord_1 was cancelled."),
        ("order.cancelled", {}, "Your order ord_1 was cancelled."),
        (
            "payment.succeeded",
            {"amount_cents": 4205, "currency": "EUR"},
            "We received your payment of 42.05 EUR for order ord_1.",
        ),
        (
            "payment.succeeded",
            {"amount_cents": 7, "currency": "USD"},
            "We received your payment of 0.07 USD for order ord_1.",
        ),
        # Amounts that do not make sense are left out rather than shown wrong.
        (
            "payment.succeeded",
            {"amount_cents": "12", "currency": "EUR"},
            "We received your payment for order ord_1.",
        ),
        (
            "payment.succeeded",
            {"amount_cents": -5, "currency": "EUR"},
            "We received your payment for order ord_1.",
        ),
        (
            "payment.succeeded",
            {"amount_cents": True, "currency": "EUR"},
            "We received your payment for order ord_1.",
        ),
        (
            "payment.succeeded",
            {"amount_cents": 100, "currency": "euro"},
            "We received your payment for order ord_1.",
        ),
        (
            "payment.failed",
            {"amount_cents": 100, "currency": "EUR", "reason": "card_declined"},
            "Your payment of 1.00 EUR for order ord_1 was declined.",
        ),
        ("payment.failed", {"reason": "provider timeout"}, "Your payment for order ord_1 failed."),
        (
            "payment.refunded",
            {"amount_cents": 2580, "currency": "EUR"},
            "Your order ord_1 was cancelled; your payment of 25.80 EUR was refunded.",
        ),
        (
            "payment.refunded",
            {"amount_cents": None, "currency": "EUR"},
            "Your order ord_1 was cancelled; your payment was refunded.",
        ),
    ],
)
def test_messages(kind: str, facts: dict[str, Any], text: str) -> None:
    # The event says something else: only the facts are worded.
    built = envelope(kind, reason="customer", amount_cents=1, currency="XXX")
    note = note_for(claim_from(built), facts)
    assert note.message == text
    assert note.kind == kind
    assert note.recipient == ALICE
    assert note.order_id == "ord_1"
    assert note.event_id == built.event_id


def test_an_integer_order_id_is_accepted() -> None:
    claim = claim_from(Envelope.new("order.confirmed", "order", ALICE, {"order_id": 42}))
    assert claim.order_id == "42"
    assert note_for(claim, {}).message == "Your order 42 is confirmed."


@pytest.mark.parametrize(
    ("built", "reason"),
    [
        (envelope("order.placed"), "event type 'order.placed' is not one this worker handles"),
        (envelope("order.confirmed", subject=None), "subject: missing"),
        (envelope("order.confirmed", subject=""), "subject: not a user id"),
        (envelope("order.confirmed", subject=".."), "subject: not a user id"),
        (envelope("order.confirmed", subject="a/b"), "subject: not a user id"),
        (envelope("order.confirmed", subject="x" * 65), "subject: not a user id"),
        (Envelope.new("order.confirmed", "order", ALICE, {}), "data.order_id"),
        (Envelope.new("order.confirmed", "order", ALICE, {"order_id": ""}), "data.order_id"),
        (Envelope.new("order.confirmed", "order", ALICE, {"order_id": True}), "data.order_id"),
        (Envelope.new("order.confirmed", "order", ALICE, {"order_id": -3}), "data.order_id"),
        (Envelope.new("order.confirmed", "order", ALICE, {"order_id": "a b"}), "data.order_id"),
        (Envelope.new("order.confirmed", "order", ALICE, {"order_id": "o" * 65}), "data.order_id"),
    ],
)
def test_events_that_cannot_be_a_notification_are_poison(built: Envelope, reason: str) -> None:
    with pytest.raises(PoisonMessage) as caught:
        claim_from(built)
    assert caught.value.reason.startswith(reason)


def test_compose_refuses_a_kind_it_does_not_know() -> None:
    with pytest.raises(PoisonMessage):
        compose("order.placed", "ord_1", {})
