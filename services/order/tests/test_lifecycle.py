"""Leaving PENDING_PAYMENT: the customer cancels, billing's payment events confirm or cancel.

Payment events are published the way billing will publish them: an Envelope
through a real producer onto the real broker, consumed by the order service's
own consumer (group ``order``).
"""

from __future__ import annotations

import uuid

import httpx
from hopkit.events import (
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
    Envelope,
    dlq,
)
from hopkit.testing import KafkaBroker
from inventory_testing import add_product
from order_testing import (
    assert_problem,
    available,
    bearer,
    events_for,
    order_body,
    order_status,
    publish,
    records_for,
    reservation_status,
    sqlite_count,
    wait_for,
)


def place(http: httpx.Client, token: str, product: int, quantity: int = 1) -> dict[str, object]:
    response = http.post("/orders", json=order_body((product, quantity)), headers=bearer(token))
    assert response.status_code == 201, response.text
    order: dict[str, object] = response.json()
    return order


def payment(topic: str, order: dict[str, object], **extra: object) -> Envelope:
    data = {
        "order_id": order["id"],
        "invoice_id": f"inv_{uuid.uuid4().hex[:8]}",
        "amount_cents": order["total_cents"],
        "currency": order["currency"],
        **extra,
    }
    return Envelope.new(topic, "billing", str(order["customer_id"]), data)


def test_the_customer_cancels_an_unpaid_order_and_the_stock_comes_back(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    kafka: KafkaBroker,
    alice: str,
    bob: str,
) -> None:
    product = add_product(inventory_db, 5)
    order = place(http, alice, product, 2)
    assert available(inventory, product) == 3

    # Someone else's order is not there to cancel.
    assert_problem(http.post(f"/orders/{order['id']}/cancel", headers=bearer(bob)), 404)
    assert available(inventory, product) == 3

    cancelled = http.post(f"/orders/{order['id']}/cancel", headers=bearer(alice))
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["reason"]) == ("CANCELLED", "customer")
    assert available(inventory, product) == 5
    assert reservation_status(inventory_db, str(order["id"])) == "RELEASED"
    [record] = events_for(kafka.bootstrap, ORDER_CANCELLED, str(order["id"]))
    assert Envelope.parse(record.value).data == {"order_id": order["id"], "reason": "customer"}

    again = http.post(f"/orders/{order['id']}/cancel", headers=bearer(alice))
    assert assert_problem(again, 409, "order-not-pending")["order_status"] == "CANCELLED"
    assert available(inventory, product) == 5


def test_payment_succeeded_confirms_commits_the_stock_and_announces_it(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    kafka: KafkaBroker,
    alice: str,
) -> None:
    product = add_product(inventory_db, 5)
    order = place(http, alice, product, 2)
    order_id = str(order["id"])

    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, payment(PAYMENT_SUCCEEDED, order), key=order_id)
    wait_for(lambda: order_status(http, alice, order_id) == "CONFIRMED", what="confirmation")
    [record] = events_for(kafka.bootstrap, ORDER_CONFIRMED, order_id)
    assert Envelope.parse(record.value).data == {"order_id": order_id}
    # Sold: the units left the stock for good (still 3 available, reservation committed).
    assert reservation_status(inventory_db, order_id) == "COMMITTED"
    assert available(inventory, product) == 3
    # A paid order cannot be cancelled any more.
    assert_problem(http.post(f"/orders/{order_id}/cancel", headers=bearer(alice)), 409)


def test_payment_failed_cancels_and_releases(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    kafka: KafkaBroker,
    alice: str,
) -> None:
    product = add_product(inventory_db, 5)
    order = place(http, alice, product, 4)
    order_id = str(order["id"])
    assert available(inventory, product) == 1

    declined = payment(PAYMENT_FAILED, order, reason="card_declined")
    publish(kafka.bootstrap, PAYMENT_FAILED, declined, key=order_id)
    wait_for(lambda: order_status(http, alice, order_id) == "CANCELLED", what="cancellation")
    body = http.get(f"/orders/{order_id}", headers=bearer(alice)).json()
    assert body["reason"] == "payment_declined"
    assert available(inventory, product) == 5
    assert reservation_status(inventory_db, order_id) == "RELEASED"
    [record] = events_for(kafka.bootstrap, ORDER_CANCELLED, order_id)
    assert Envelope.parse(record.value).data == {"order_id": order_id, "reason": "payment_declined"}


def test_the_same_payment_event_twice_has_one_effect(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    order_db: str,
    kafka: KafkaBroker,
    alice: str,
) -> None:
    product = add_product(inventory_db, 5)
    first, marker = place(http, alice, product), place(http, alice, product)
    first_id, marker_id = str(first["id"]), str(marker["id"])
    paid = payment(PAYMENT_SUCCEEDED, first)

    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, paid, key=first_id)
    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, paid, key=first_id)  # redelivered, same event
    # One partition, handled in order: once the marker is applied, the duplicate was seen.
    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, payment(PAYMENT_SUCCEEDED, marker), key=marker_id)
    wait_for(lambda: order_status(http, alice, marker_id) == "CONFIRMED", what="the marker")
    events_for(kafka.bootstrap, ORDER_CONFIRMED, marker_id)

    assert order_status(http, alice, first_id) == "CONFIRMED"
    assert len(records_for(kafka.bootstrap, ORDER_CONFIRMED, first_id)) == 1
    assert (
        sqlite_count(
            order_db,
            "SELECT count(*) FROM outbox WHERE topic = ? AND key = ?",
            ORDER_CONFIRMED,
            first_id,
        )
        == 1
    )
    assert (
        sqlite_count(
            order_db, "SELECT count(*) FROM processed_events WHERE event_id = ?", paid.event_id
        )
        == 1
    )
    assert available(inventory, product) == 3
    assert reservation_status(inventory_db, first_id) == "COMMITTED"


def test_a_late_decline_does_not_undo_a_payment_and_forged_events_go_to_the_dlq(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    kafka: KafkaBroker,
    alice: str,
) -> None:
    product = add_product(inventory_db, 5)
    order = place(http, alice, product)
    order_id = str(order["id"])
    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, payment(PAYMENT_SUCCEEDED, order), key=order_id)
    wait_for(lambda: order_status(http, alice, order_id) == "CONFIRMED", what="confirmation")

    # A decline arriving after the payment (another event id) changes nothing.
    marker = place(http, alice, product)
    publish(kafka.bootstrap, PAYMENT_FAILED, payment(PAYMENT_FAILED, order), key=order_id)
    publish(kafka.bootstrap, PAYMENT_FAILED, payment(PAYMENT_FAILED, marker), key=str(marker["id"]))
    wait_for(lambda: order_status(http, alice, str(marker["id"])) == "CANCELLED", what="the marker")
    assert order_status(http, alice, order_id) == "CONFIRMED"
    assert records_for(kafka.bootstrap, ORDER_CANCELLED, order_id) == []
    assert available(inventory, product) == 4

    # A payment for an order that does not exist, or for the wrong amount, is never applied.
    ghost = {"id": "ord_does_not_exist", "total_cents": 100, "currency": "EUR"}
    ghost["customer_id"] = order["customer_id"]
    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, payment(PAYMENT_SUCCEEDED, ghost), key="ghost")
    cheap = place(http, alice, product)
    cheap_id = str(cheap["id"])
    underpaid = payment(PAYMENT_SUCCEEDED, cheap, amount_cents=1)
    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, underpaid, key=cheap_id)
    dead = wait_for(
        lambda: (
            len(records_for(kafka.bootstrap, dlq(PAYMENT_SUCCEEDED), cheap_id)) == 1
            and records_for(kafka.bootstrap, dlq(PAYMENT_SUCCEEDED), "ghost")
        ),
        what="both forged events in the DLQ",
    )
    reason = dict(dead[0].headers)["x-dlq-reason"].decode()
    assert "Order not found" in reason
    assert order_status(http, alice, cheap_id) == "PENDING_PAYMENT"
