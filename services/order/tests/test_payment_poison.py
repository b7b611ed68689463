"""Payment events order can never apply go to the DLQ with the reason; the next one is applied.

Real broker, real billing (its record written with its own repository), real
inventory. Each malformed event below is about an order billing did charge,
so only its form, not billing's word, can keep it from being applied.
"""

from __future__ import annotations

import httpx
from hopkit.events import PAYMENT_FAILED, PAYMENT_SUCCEEDED, Envelope, dlq
from hopkit.testing import KafkaBroker
from inventory_testing import add_product
from order_testing import (
    order_status,
    payment,
    place,
    publish,
    record_payment,
    records_for,
    wait_for,
)


def test_malformed_payment_events_are_dead_lettered_and_the_true_one_applied(
    http: httpx.Client, inventory_db: str, billing_db: str, kafka: KafkaBroker, alice: str
) -> None:
    product = add_product(inventory_db, 5)
    order = place(http, alice, product)
    invoice = record_payment(billing_db, order)  # billing charged it: the events are about a fact
    true = payment(PAYMENT_SUCCEEDED, order, invoice_id=invoice)
    body = true.model_dump(mode="json")
    malformed = {
        # Billing's record says succeeded; the event says failed, on the succeeded topic.
        "poison: type is not 'payment.succeeded', the topic it came on": Envelope.new(
            PAYMENT_FAILED, "billing", body["subject"], body["data"]
        ),
        "poison: data.order_id is missing or not an order id": Envelope.new(
            PAYMENT_SUCCEEDED, "billing", body["subject"], {**body["data"], "order_id": None}
        ),
        "poison: data.amount_cents has the wrong type": Envelope.new(
            PAYMENT_SUCCEEDED, "billing", body["subject"], {**body["data"], "amount_cents": "1"}
        ),
    }
    for event in malformed.values():
        publish(kafka.bootstrap, PAYMENT_SUCCEEDED, event, key=order["id"])
    assert order_status(http, alice, order["id"]) == "PENDING_PAYMENT"
    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, true, key=order["id"])

    wait_for(lambda: order_status(http, alice, order["id"]) == "CONFIRMED", what="the true one")
    dead = wait_for(
        lambda: records_for(kafka.bootstrap, dlq(PAYMENT_SUCCEEDED), order["id"]),
        what="the dead letters",
    )
    reasons = {dict(record.headers)["x-dlq-reason"].decode(): record.value for record in dead}
    assert reasons == {reason: event.to_bytes() for reason, event in malformed.items()}
