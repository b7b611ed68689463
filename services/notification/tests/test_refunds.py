"""The customer hears about a refund: ``payment.refunded`` in, one notification out.

Billing refunds a payment whose order was cancelled before the payment reached
it (order asks, docs/internal-api.md); the refund writes ``payment.refunded`` to
billing's outbox. Here the real billing service makes the refund and writes the
event, a real outbox relay publishes it to the real broker, and the worker
checks it with billing (``refunded`` in billing's payment record) before
telling the customer, with billing's amount. A ``payment.refunded`` billing does
not vouch for is dropped like every other forged event.
"""

from __future__ import annotations

import uuid

import httpx
from hopkit.events import PAYMENT_REFUNDED
from hopkit.testing import KafkaBroker
from notification_service.messages import claim_from
from notification_service.owners import PaymentRecord, judge_payment
from notification_testing import (
    Customer,
    Shop,
    a_payment,
    a_refund,
    about,
    an_order,
    assert_dropped,
    captured_logs,
    dead_letters,
    drained,
    event,
    eventually,
    new_order_id,
    notifications,
    processed,
    publish,
    service_token,
    stored,
)


def refunder(auth: httpx.Client) -> str:
    """Order's own token for billing's refund route: only order may ask for a refund."""
    return service_token(auth, "order", "billing", "payments:refund")


async def test_a_refund_tells_its_customer_with_billings_amount(
    kafka: KafkaBroker,
    http: httpx.Client,
    auth: httpx.Client,
    database_url: str,
    shop: Shop,
    alice: Customer,
    bob: Customer,
) -> None:
    order_id = await an_order(shop, alice.user_id, "CANCELLED", reason="customer", total_cents=2580)
    invoice_id = await a_payment(shop, alice.user_id, order_id, amount_cents=2580)
    refunded = await a_refund(shop, refunder(auth), kafka.bootstrap, order_id)
    assert (refunded.type, refunded.subject) == (PAYMENT_REFUNDED, alice.user_id)
    assert refunded.data["invoice_id"] == invoice_id

    await eventually(
        lambda: bool(about(notifications(http, alice.token), order_id)), what="alice's note"
    )
    [seen] = about(notifications(http, alice.token), order_id)
    assert seen["kind"] == "payment.refunded"
    assert seen["message"] == (
        f"Your order {order_id} was cancelled; your payment of 25.80 EUR was refunded."
    )
    assert about(notifications(http, bob.token), order_id) == []
    [row] = await stored(database_url, order_id)
    assert (row["recipient"], row["email"]) == (alice.user_id, "alice@example.com")
    assert row["event_id"] == refunded.event_id
    await eventually(lambda: drained(kafka.bootstrap, PAYMENT_REFUNDED), what="the commit")
    assert await processed(database_url, refunded.event_id) == 1


async def test_the_amount_in_the_event_is_not_what_the_customer_reads(
    kafka: KafkaBroker, http: httpx.Client, auth: httpx.Client, shop: Shop, alice: Customer
) -> None:
    # A refund billing made, announced by someone else with other figures: billing's win.
    order_id = await an_order(shop, alice.user_id, "CANCELLED", reason="expired", total_cents=990)
    await a_payment(shop, alice.user_id, order_id, amount_cents=990)
    true = await a_refund(shop, refunder(auth), kafka.bootstrap, order_id)
    await eventually(lambda: drained(kafka.bootstrap, PAYMENT_REFUNDED), what="the true event")
    [seen] = about(notifications(http, alice.token), order_id)
    assert "9.90 EUR" in seen["message"]
    # Its copy under another id, claiming another amount, tells nobody anything more.
    inflated = event(
        PAYMENT_REFUNDED,
        alice.user_id,
        order_id,
        invoice_id=true.data["invoice_id"],
        amount_cents=99_999,
        currency="USD",
    )
    await publish(kafka.bootstrap, PAYMENT_REFUNDED, inflated.to_bytes())
    await eventually(lambda: drained(kafka.bootstrap, PAYMENT_REFUNDED), what="the copy")
    assert [n["message"] for n in about(notifications(http, alice.token), order_id)] == [
        seen["message"]
    ]


async def test_the_same_refund_event_twice_stores_one_notification(
    kafka: KafkaBroker,
    http: httpx.Client,
    auth: httpx.Client,
    database_url: str,
    shop: Shop,
    alice: Customer,
) -> None:
    order_id = await an_order(shop, alice.user_id, "CANCELLED", reason="customer")
    await a_payment(shop, alice.user_id, order_id)
    refunded = await a_refund(shop, refunder(auth), kafka.bootstrap, order_id)
    # Redelivered as is (a relay that crashed before marking the row published).
    await publish(kafka.bootstrap, PAYMENT_REFUNDED, refunded.to_bytes(), key=order_id.encode())
    await eventually(lambda: drained(kafka.bootstrap, PAYMENT_REFUNDED), what="both deliveries")
    assert len(about(notifications(http, alice.token), order_id)) == 1
    [row] = await stored(database_url, order_id)
    assert row["event_id"] == refunded.event_id
    assert await processed(database_url, refunded.event_id) == 1


async def test_a_forged_refund_tells_nobody(
    kafka: KafkaBroker,
    http: httpx.Client,
    database_url: str,
    shop: Shop,
    alice: Customer,
    bob: Customer,
) -> None:
    paid = await an_order(shop, alice.user_id, "CONFIRMED")
    paid_invoice = await a_payment(shop, alice.user_id, paid)  # paid, never refunded
    declined = await an_order(shop, alice.user_id, "CANCELLED", reason="payment_declined")
    await a_payment(shop, alice.user_id, declined, "DECLINED")
    unpaid = await an_order(shop, alice.user_id, "CANCELLED", reason="customer")
    money = {"invoice_id": str(uuid.uuid4()), "amount_cents": 1250, "currency": "EUR"}
    cases = [
        # The tempting one: a paid order "refunded", to make the customer ask for money back.
        (
            event(PAYMENT_REFUNDED, alice.user_id, paid, **{**money, "invoice_id": paid_invoice}),
            "billing recorded no refund of the payment",
        ),
        (
            event(PAYMENT_REFUNDED, alice.user_id, declined, **money),
            "billing recorded the payment as failed",
        ),
        (
            event(PAYMENT_REFUNDED, alice.user_id, unpaid, **money),
            "billing has no payment for the order",
        ),
        (
            event(PAYMENT_REFUNDED, alice.user_id, new_order_id(), **money),
            "billing has no payment for the order",
        ),
        (
            event(PAYMENT_REFUNDED, bob.user_id, paid, **money),
            "the payment is not the subject's",
        ),
    ]
    with captured_logs() as logs:
        for forged, _ in cases:
            await publish(kafka.bootstrap, PAYMENT_REFUNDED, forged.to_bytes())
        await eventually(lambda: drained(kafka.bootstrap, PAYMENT_REFUNDED), what="all handled")
    for forged, reason in cases:
        await assert_dropped(database_url, logs.getvalue(), forged, reason)
    for order_id in (paid, declined, unpaid):
        assert about(notifications(http, alice.token), order_id) == []
        assert about(notifications(http, bob.token), order_id) == []
    # Dropped, not dead-lettered, as every forged event is.
    dead = await dead_letters(kafka.bootstrap, PAYMENT_REFUNDED)
    assert not any(forged.event_id.encode() in dead for forged, _ in cases)


def test_a_billing_that_does_not_say_refunded_confirms_no_refund() -> None:
    # An older billing's answer has no `refunded`: a refund it cannot vouch for is refused.
    claim = claim_from(event(PAYMENT_REFUNDED, "u-1", "ord_1"))
    answer = b'{"order_id":"ord_1","status":"succeeded","amount_cents":100,"currency":"EUR",'
    record = PaymentRecord.model_validate_json(answer + b'"customer_id":"u-1","reason":null}')
    assert judge_payment(claim, record).refusal == "billing recorded no refund of the payment"
    refunded = record.model_copy(update={"refunded": True})
    assert judge_payment(claim, refunded).facts == {
        "amount_cents": 100,
        "currency": "EUR",
        "reason": None,
    }
