"""A forged event tells nobody anything: the worker checks each event with the service that owns it.

``order.*`` events are checked with the real order service, ``payment.*`` events
with the real billing service (their records written with their own
repositories). An event the owner does not confirm is dropped: nothing
stored, one warning naming the event and the reason, not retried, not
dead-lettered, and not recorded as processed (a genuine event carrying the
same id must still count).
"""

from __future__ import annotations

import uuid

import httpx
from hopkit.events import (
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
)
from hopkit.testing import KafkaBroker
from notification_testing import (
    Customer,
    Shop,
    a_payment,
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
    stored,
)


async def test_forged_events_about_real_orders_notify_nobody(
    kafka: KafkaBroker, http: httpx.Client, database_url: str, shop: Shop, alice: Customer
) -> None:
    unpaid = await an_order(shop, alice.user_id, "PENDING_PAYMENT")
    confirmed = await an_order(shop, alice.user_id, "CONFIRMED")
    declined = await an_order(shop, alice.user_id, "CANCELLED", reason="payment_declined")
    await a_payment(shop, alice.user_id, declined, "DECLINED")
    money = {"invoice_id": str(uuid.uuid4()), "amount_cents": 1250, "currency": "EUR"}
    no_payment = "billing has no payment for the order"
    pending = "the order is PENDING_PAYMENT"
    cases = [
        # The attack suite's: an unpaid order "paid", by an event written straight to Kafka.
        (event(PAYMENT_SUCCEEDED, alice.user_id, unpaid, **money), no_payment),
        (event(ORDER_CONFIRMED, alice.user_id, unpaid), pending),
        (event(ORDER_CANCELLED, alice.user_id, unpaid, reason="expired"), pending),
        (event(ORDER_CANCELLED, alice.user_id, confirmed), "the order is CONFIRMED"),
        (event(PAYMENT_FAILED, alice.user_id, confirmed, **money), no_payment),
        (
            event(PAYMENT_SUCCEEDED, alice.user_id, declined, **money),
            "billing recorded the payment as failed",
        ),
        (
            event(ORDER_CONFIRMED, alice.user_id, new_order_id()),
            "the order service has no such order",
        ),
    ]
    with captured_logs() as logs:
        for forged, _ in cases:
            await publish(kafka.bootstrap, forged.type, forged.to_bytes())
        for topic in {forged.type for forged, _ in cases}:
            await eventually(lambda t=topic: drained(kafka.bootstrap, t), what=f"{topic} drained")
    for forged, reason in cases:
        await assert_dropped(database_url, logs.getvalue(), forged, reason)
    for order_id in (unpaid, confirmed, declined):
        assert about(notifications(http, alice.token), order_id) == []
    # Dropped, not dead-lettered: none of these is worth replaying.
    dead = b"".join([await dead_letters(kafka.bootstrap, forged.type) for forged, _ in cases])
    assert not any(forged.event_id.encode() in dead for forged, _ in cases)


async def test_news_of_someone_elses_order_reaches_nobody(
    kafka: KafkaBroker,
    http: httpx.Client,
    database_url: str,
    shop: Shop,
    alice: Customer,
    bob: Customer,
) -> None:
    # True events about alice's order, re-addressed to bob.
    order_id = await an_order(shop, alice.user_id, "CONFIRMED")
    await a_payment(shop, alice.user_id, order_id)
    cases = [
        (event(ORDER_CONFIRMED, bob.user_id, order_id), "the order is not the subject's"),
        (event(PAYMENT_SUCCEEDED, bob.user_id, order_id), "the payment is not the subject's"),
    ]
    with captured_logs() as logs:
        for forged, _ in cases:
            await publish(kafka.bootstrap, forged.type, forged.to_bytes())
        for forged, _ in cases:
            await eventually(
                lambda t=forged.type: drained(kafka.bootstrap, t), what=f"{forged.type} drained"
            )
    for forged, reason in cases:
        await assert_dropped(database_url, logs.getvalue(), forged, reason)
    assert about(notifications(http, bob.token), order_id) == []
    assert about(notifications(http, alice.token), order_id) == []


async def test_a_copy_of_a_true_event_under_a_new_id_tells_the_customer_once(
    kafka: KafkaBroker, http: httpx.Client, database_url: str, shop: Shop, alice: Customer
) -> None:
    order_id = await an_order(shop, alice.user_id, "CONFIRMED")
    true = event(ORDER_CONFIRMED, alice.user_id, order_id)
    copy = event(ORDER_CONFIRMED, alice.user_id, order_id)  # same news, another event id
    await publish(kafka.bootstrap, ORDER_CONFIRMED, true.to_bytes())
    await publish(kafka.bootstrap, ORDER_CONFIRMED, copy.to_bytes())
    await eventually(lambda: drained(kafka.bootstrap, ORDER_CONFIRMED), what="both handled")
    [row] = await stored(database_url, order_id)
    assert row["event_id"] == true.event_id
    assert await processed(database_url, copy.event_id) == 0  # no effect: unrecorded
    assert len(about(notifications(http, alice.token), order_id)) == 1
