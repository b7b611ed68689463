"""Leaving PENDING_PAYMENT: the customer cancels, billing's payment events confirm or cancel.

Payment events are published the way billing will publish them: an Envelope
through a real producer onto the real broker, consumed by the order service's
own consumer (group ``order``), which checks each with billing (the real billing
service, whose record the tests write as its worker would: ``billed``). What
happens to events billing does not confirm is in test_payment_verification.py.
"""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from auth_testing import service_token
from hopkit.events import (
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
    Envelope,
)
from hopkit.testing import KafkaBroker
from inventory_testing import add_product
from order_testing import (
    assert_problem,
    available,
    bearer,
    billed,
    events_for,
    invoice_status,
    order_status,
    place,
    publish,
    records_for,
    reservation_status,
    sqlite_count,
    wait_for,
)


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
    billing_db: str,
    kafka: KafkaBroker,
    alice: str,
) -> None:
    product = add_product(inventory_db, 5)
    order = place(http, alice, product, 2)
    order_id = str(order["id"])

    paid = billed(billing_db, PAYMENT_SUCCEEDED, order)
    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, paid, key=order_id)
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
    billing_db: str,
    kafka: KafkaBroker,
    alice: str,
) -> None:
    product = add_product(inventory_db, 5)
    order = place(http, alice, product, 4)
    order_id = str(order["id"])
    assert available(inventory, product) == 1

    declined = billed(billing_db, PAYMENT_FAILED, order, reason="card_declined")
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
    billing_db: str,
    kafka: KafkaBroker,
    alice: str,
) -> None:
    product = add_product(inventory_db, 5)
    first, marker = place(http, alice, product), place(http, alice, product)
    first_id, marker_id = str(first["id"]), str(marker["id"])
    paid = billed(billing_db, PAYMENT_SUCCEEDED, first)

    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, paid, key=first_id)
    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, paid, key=first_id)  # redelivered, same event
    # One partition, handled in order: once the marker is applied, the duplicate was seen.
    marker_paid = billed(billing_db, PAYMENT_SUCCEEDED, marker)
    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, marker_paid, key=marker_id)
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


# The reservation settles a payment racing a cancellation: each side calls inventory before
# it writes the order, so these tests stop one side right after its inventory call.


def test_a_cancellation_that_loses_the_race_at_inventory_changes_nothing(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    billing_db: str,
    auth: httpx.Client,
    kafka: KafkaBroker,
    alice: str,
) -> None:
    product = add_product(inventory_db, 5)
    order = place(http, alice, product, 2)
    order_id = str(order["id"])
    # A payment has sold the stock at inventory and not yet written the order.
    settle = service_token(auth, "order", "inventory", "inventory:release")
    sold = inventory.post(f"/reservations/{order_id}/commit", headers=bearer(settle))
    assert sold.status_code == 200, sold.text

    refused = http.post(f"/orders/{order_id}/cancel", headers=bearer(alice))
    assert_problem(refused, 409, "reservation-settled")
    assert order_status(http, alice, order_id) == "PENDING_PAYMENT"
    assert records_for(kafka.bootstrap, ORDER_CANCELLED, order_id) == []

    # The payment finishes (its inventory call again: idempotent) and the order is paid.
    paid = billed(billing_db, PAYMENT_SUCCEEDED, order)
    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, paid, key=order_id)
    wait_for(lambda: order_status(http, alice, order_id) == "CONFIRMED", what="confirmation")
    assert reservation_status(inventory_db, order_id) == "COMMITTED"
    assert available(inventory, product) == 3


def test_a_payment_that_loses_the_race_at_inventory_is_retried_and_changes_nothing(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    order_db: str,
    billing_db: str,
    auth: httpx.Client,
    kafka: KafkaBroker,
    alice: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    product = add_product(inventory_db, 5)
    order = place(http, alice, product, 2)
    order_id = str(order["id"])
    # A cancellation has released the stock at inventory and not yet written the order.
    settle = service_token(auth, "order", "inventory", "inventory:release")
    released = inventory.post(f"/reservations/{order_id}/release", headers=bearer(settle))
    assert released.status_code == 200, released.text

    paid = billed(billing_db, PAYMENT_SUCCEEDED, order)
    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, paid, key=order_id)
    time.sleep(1.0)  # its first attempt is refused at inventory: a 503, retried
    assert order_status(http, alice, order_id) == "PENDING_PAYMENT"

    # The cancellation finishes (its release again: idempotent); the retry then finds the
    # order cancelled: no confirmation, the stock stays released, the payment is given back.
    cancelled = http.post(f"/orders/{order_id}/cancel", headers=bearer(alice))
    assert cancelled.status_code == 200, cancelled.text
    wait_for(
        lambda: "payment for a cancelled order refunded" in caplog.text,
        timeout=30,
        what="the payment event to be handled",
    )
    assert invoice_status(billing_db, order_id) == "REFUNDED"
    # The refund was the event's effect: recorded, so the same event is not handled again.
    assert (
        sqlite_count(
            order_db, "SELECT count(*) FROM processed_events WHERE event_id = ?", paid.event_id
        )
        == 1
    )
    assert order_status(http, alice, order_id) == "CANCELLED"
    assert records_for(kafka.bootstrap, ORDER_CONFIRMED, order_id) == []
    assert reservation_status(inventory_db, order_id) == "RELEASED"
    assert available(inventory, product) == 5
