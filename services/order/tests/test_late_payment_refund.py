"""A payment that reaches order after the order was cancelled is given back (billing's refund).

The race, made deterministic: billing checks the order (PENDING_PAYMENT) and
charges it (its invoice, written here with billing's own repository as its
worker would), the customer cancels before order sees ``payment.succeeded``,
then the event arrives. Billing runs for real and vouches for the payment;
order, finding its order CANCELLED, has billing refund it: the invoice ends
REFUNDED, the provider gave the money back once, and the order stays
CANCELLED with its stock released.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from typing import Any

import httpx
import pytest
from billing_service.provider import Refund
from hopkit.events import ORDER_CONFIRMED, PAYMENT_SUCCEEDED, Envelope
from hopkit.testing import KafkaBroker, ServerThread
from inventory_testing import add_product
from order_testing import (
    available,
    bearer,
    billed,
    invoice_status,
    order_status,
    place,
    publish,
    records_for,
    reservation_status,
    sqlite_count,
    wait_for,
)

REFUNDED_LINE = "payment for a cancelled order refunded"


def refunds_of(billing_server: ServerThread, order_id: str) -> list[Refund]:
    """What billing's (simulated) provider gave back for the order."""
    made: list[Refund] = billing_server.app.state.provider.refunds
    return [refund for refund in made if refund.idempotency_key == order_id]


def processed(order_db: str, event: Envelope) -> int:
    return sqlite_count(
        order_db, "SELECT count(*) FROM processed_events WHERE event_id = ?", event.event_id
    )


def paid_then_cancelled(
    http: httpx.Client, billing_db: str, token: str, product: int
) -> tuple[dict[str, Any], Envelope]:
    """An order billing charged, cancelled by its customer before the payment reached order."""
    order = place(http, token, product, 2)
    paid = billed(billing_db, PAYMENT_SUCCEEDED, order)  # billing's PAID invoice, its event
    cancelled = http.post(f"/orders/{order['id']}/cancel", headers=bearer(token))
    assert cancelled.status_code == 200, cancelled.text
    return order, paid


def test_a_payment_for_an_order_cancelled_first_is_refunded(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    order_db: str,
    billing_server: ServerThread,
    billing_db: str,
    kafka: KafkaBroker,
    alice: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="order_service")
    product = add_product(inventory_db, 5)
    order, paid = paid_then_cancelled(http, billing_db, alice, product)
    order_id = str(order["id"])
    assert invoice_status(billing_db, order_id) == "PAID"  # the customer's money is taken

    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, paid, key=order_id)
    wait_for(
        lambda: invoice_status(billing_db, order_id) == "REFUNDED",
        timeout=20,
        what="the refund",
    )
    [refund] = refunds_of(billing_server, order_id)
    assert (refund.amount_cents, refund.currency) == (order["total_cents"], order["currency"])
    # The cancellation stands: no confirmation, the stock stays released.
    assert order_status(http, alice, order_id) == "CANCELLED"
    assert records_for(kafka.bootstrap, ORDER_CONFIRMED, order_id) == []
    assert reservation_status(inventory_db, order_id) == "RELEASED"
    assert available(inventory, product) == 5
    # An INFO line says what happened (no more warning about a missing refund flow).
    wait_for(lambda: processed(order_db, paid) == 1, what="the event to be recorded")
    [line] = [r for r in caplog.records if r.getMessage() == REFUNDED_LINE]
    assert line.levelno == logging.INFO
    assert line.order_id == order_id  # type: ignore[attr-defined]
    assert line.refund_reference == refund.reference  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "pending" in r.msg]


def test_the_same_payment_delivered_twice_is_refunded_once(
    http: httpx.Client,
    inventory_db: str,
    order_db: str,
    billing_server: ServerThread,
    billing_db: str,
    kafka: KafkaBroker,
    alice: str,
) -> None:
    product = add_product(inventory_db, 5)
    order, paid = paid_then_cancelled(http, billing_db, alice, product)
    order_id = str(order["id"])
    # The event redelivered as is, and a copy under another event id (a second publish of
    # one payment): the first is skipped as processed, the second asks billing, which
    # answers with the refund already made.
    copy = paid.model_copy(update={"event_id": str(uuid.uuid4())})
    for event in (paid, paid, copy):
        publish(kafka.bootstrap, PAYMENT_SUCCEEDED, event, key=order_id)

    wait_for(lambda: processed(order_db, copy) == 1, timeout=20, what="all three deliveries")
    assert processed(order_db, paid) == 1
    assert invoice_status(billing_db, order_id) == "REFUNDED"
    assert len(refunds_of(billing_server, order_id)) == 1
    assert order_status(http, alice, order_id) == "CANCELLED"


def test_a_refund_billing_does_not_make_is_retried_until_it_does(
    http: httpx.Client,
    inventory_db: str,
    order_db: str,
    billing_server: ServerThread,
    billing_db: str,
    kafka: KafkaBroker,
    alice: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="hopkit")
    product = add_product(inventory_db, 5)
    order, paid = paid_then_cancelled(http, billing_db, alice, product)
    order_id = str(order["id"])
    # Billing's database refuses to mark this invoice refunded for now: billing answers 500.
    trigger = f"refuse_{uuid.uuid4().hex}"
    with sqlite3.connect(billing_db.removeprefix("sqlite:///")) as connection:
        connection.execute(
            f"CREATE TRIGGER {trigger} BEFORE UPDATE ON invoices "
            f"WHEN NEW.order_id = '{order_id}' BEGIN SELECT RAISE(ABORT, 'down'); END"
        )
    try:
        publish(kafka.bootstrap, PAYMENT_SUCCEEDED, paid, key=order_id)

        def retries() -> int:
            return sum(
                1
                for r in caplog.records
                if r.getMessage() == "event handler failed; retrying"
                and getattr(r, "event_id", None) == paid.event_id
                and getattr(r, "error", None) == "BillingUnavailable"
            )

        wait_for(lambda: retries() >= 1, timeout=20, what="a retry of the refund")
        assert invoice_status(billing_db, order_id) == "PAID"
        assert processed(order_db, paid) == 0  # not swallowed: still owed
    finally:
        with sqlite3.connect(billing_db.removeprefix("sqlite:///")) as connection:
            connection.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    wait_for(
        lambda: invoice_status(billing_db, order_id) == "REFUNDED",
        timeout=20,
        what="the refund once billing makes it",
    )
    wait_for(lambda: processed(order_db, paid) == 1, what="the event to be recorded")
    assert len(refunds_of(billing_server, order_id)) == 1  # the provider's refund is idempotent
