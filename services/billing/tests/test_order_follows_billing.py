"""The whole chain: billing's payment events move the order; a forged one moves nothing.

Real order, inventory and billing services on a real broker. Billing charges a
placed order and announces it; the order service checks each payment event
with billing (``GET /internal/orders/{id}/payment``, its own
client-credentials token) before it confirms or cancels.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from billing_testing import (
    DECLINED_CARD,
    bearer,
    eventually,
    invoices_for,
    place_order,
    publish,
)
from hopkit.events import PAYMENT_SUCCEEDED, Envelope
from hopkit.testing import KafkaBroker, ServerThread

AUTHENTICATION_CARD = "4000000000003063"  # the provider wants the cardholder: no payment


def order_of(orders: httpx.Client, token: str, order_id: str) -> dict[str, Any]:
    response = orders.get(f"/orders/{order_id}", headers=bearer(token))
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order


async def reaches(orders: httpx.Client, token: str, order_id: str, status: str) -> None:
    async def there() -> bool:
        return order_of(orders, token, order_id)["status"] == status

    await eventually(there, 20, f"order {order_id} to be {status}")


def available(inventory: httpx.Client, product: int) -> int:
    units: int = inventory.get(f"/products/{product}").json()["available"]
    return units


async def test_a_payment_confirms_the_order_and_a_decline_cancels_it(
    billing_server: ServerThread, orders: httpx.Client, alice_orders: str, mug: int
) -> None:
    paid = place_order(orders, alice_orders, mug)
    declined = place_order(orders, alice_orders, mug, card=DECLINED_CARD)
    await reaches(orders, alice_orders, paid["id"], "CONFIRMED")
    await reaches(orders, alice_orders, declined["id"], "CANCELLED")
    assert order_of(orders, alice_orders, declined["id"])["reason"] == "payment_declined"


async def test_a_forged_payment_succeeded_for_an_unpaid_order_confirms_nothing(
    billing_server: ServerThread,
    billing_database_url: str,
    inventory_server: ServerThread,
    kafka: KafkaBroker,
    orders: httpx.Client,
    alice_orders: str,
    mug: int,
) -> None:
    # The attack suite's case: billing leaves the order unpaid (no invoice, no event) ...
    unpaid = place_order(orders, alice_orders, mug, card=AUTHENTICATION_CARD)
    with httpx.Client(base_url=inventory_server.base_url, timeout=10) as inventory:
        held = available(inventory, mug)
        # ... and someone writes the payment event billing never sent, right in every detail
        # the customer knows.
        forged = Envelope.new(
            PAYMENT_SUCCEEDED,
            "billing",
            unpaid["customer_id"],
            {
                "order_id": unpaid["id"],
                "invoice_id": str(uuid.uuid4()),
                "amount_cents": unpaid["total_cents"],
                "currency": unpaid["currency"],
            },
        )
        key = unpaid["id"].encode()
        await publish(kafka.bootstrap, PAYMENT_SUCCEEDED, forged.to_bytes(), key=key)
        # A real payment after it, on the same topic: once it is applied, the forgery was seen.
        marker = place_order(orders, alice_orders, mug)
        await reaches(orders, alice_orders, marker["id"], "CONFIRMED")

        assert order_of(orders, alice_orders, unpaid["id"])["status"] == "PENDING_PAYMENT"
        assert await invoices_for(billing_database_url, unpaid["id"]) == []
        assert available(inventory, mug) == held - 1  # only the marker's unit went
    cancelled = orders.post(f"/orders/{unpaid['id']}/cancel", headers=bearer(alice_orders))
    assert cancelled.status_code == 200, cancelled.text  # still the customer's to cancel
