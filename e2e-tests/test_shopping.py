"""A customer's purchase end to end: login, browse, order, pay over Kafka, invoice, notification."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from e2e_support import DECLINED_CARD, GOOD_CARD, System, available, bearer, eventually, login

#: ORDER_MAX_OPEN_UNITS's default: what one customer's unpaid orders may hold together.
DEFAULT_MAX_OPEN_UNITS = 50


@pytest.fixture(scope="module")
def alice(system: System) -> dict[str, str]:
    return bearer(login(system.auth, "alice"))


@pytest.fixture(scope="module")
def bob(system: System) -> dict[str, str]:
    return bearer(login(system.auth, "bob"))


def a_product(gateway: httpx.Client, at_least: int = 1) -> dict[str, Any]:
    products: list[dict[str, Any]] = gateway.get("/api/products").json()
    return next(p for p in products if p["available"] >= at_least)


def place(
    gateway: httpx.Client,
    who: dict[str, str],
    product_id: int,
    quantity: int = 1,
    card: str = GOOD_CARD,
) -> httpx.Response:
    body = {"items": [{"product_id": product_id, "quantity": quantity}], "card": card}
    return gateway.post("/api/orders", json=body, headers=who)


def order_status(gateway: httpx.Client, who: dict[str, str], order_id: str) -> dict[str, Any]:
    response = gateway.get(f"/api/orders/{order_id}", headers=who)
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order


def test_browsing_needs_no_login(gateway: httpx.Client) -> None:
    response = gateway.get("/api/products")
    assert response.status_code == 200
    assert {"id", "sku", "name", "price_cents", "currency", "available"} <= set(response.json()[0])


def test_a_paid_order_is_confirmed_invoiced_and_notified(
    gateway: httpx.Client, alice: dict[str, str]
) -> None:
    product = a_product(gateway)
    before = available(gateway, product["id"])

    placed = place(gateway, alice, product["id"])
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["status"] == "PENDING_PAYMENT"
    assert order["total_cents"] == product["price_cents"]
    assert "4242424242424242" not in placed.text  # the card number never comes back
    assert available(gateway, product["id"]) == before - 1  # reserved at once

    confirmed = eventually(
        lambda: (o := order_status(gateway, alice, order["id"]))["status"] == "CONFIRMED" and o,
        "payment over Kafka to confirm the order",
    )
    assert confirmed["id"] == order["id"]

    invoices = eventually(
        lambda: [
            i
            for i in gateway.get("/api/invoices", headers=alice).json()
            if i["order_id"] == order["id"]
        ],
        "the invoice",
    )
    assert invoices[0]["status"] == "PAID"
    assert invoices[0]["amount_cents"] == order["total_cents"]

    notes = eventually(
        lambda: [
            n
            for n in gateway.get("/api/notifications", headers=alice).json()
            if n.get("order_id") == order["id"]
        ],
        "the notification",
    )
    assert notes


def test_a_declined_card_cancels_the_order_and_releases_stock(
    gateway: httpx.Client, alice: dict[str, str]
) -> None:
    product = a_product(gateway)
    before = available(gateway, product["id"])
    placed = place(gateway, alice, product["id"], card=DECLINED_CARD)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]

    cancelled = eventually(
        lambda: (o := order_status(gateway, alice, order_id))["status"] == "CANCELLED" and o,
        "the declined payment to cancel the order",
    )
    assert cancelled["reason"] == "payment_declined"
    eventually(lambda: available(gateway, product["id"]) == before, "stock to be released")
    invoices = gateway.get("/api/invoices", headers=alice).json()
    assert [i["status"] for i in invoices if i["order_id"] == order_id] == ["DECLINED"]


def test_insufficient_stock_is_a_409_and_nothing_is_charged(
    gateway: httpx.Client, alice: dict[str, str]
) -> None:
    # The scarcest product, one unit more than it has: within order's limit on the units one
    # customer's unpaid orders may hold (ORDER_MAX_OPEN_UNITS), so stock is what refuses it.
    # Uncapped: over a product's max_held_per_customer, inventory answers 422 first.
    products: list[dict[str, Any]] = gateway.get("/api/products").json()
    uncapped = [p for p in products if p.get("max_held_per_customer") is None]
    product = min(uncapped, key=lambda p: p["available"])
    if product["available"] + 1 > DEFAULT_MAX_OPEN_UNITS:
        pytest.skip("every product has 50 or more units: the limit on unpaid units answers first")
    invoices_before = len(gateway.get("/api/invoices", headers=alice).json())
    orders_before = len(gateway.get("/api/orders", headers=alice).json())

    response = place(gateway, alice, product["id"], quantity=product["available"] + 1)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/insufficient-stock"), response.text
    assert len(gateway.get("/api/orders", headers=alice).json()) == orders_before
    assert len(gateway.get("/api/invoices", headers=alice).json()) == invoices_before


def test_a_customer_sees_only_their_own_orders(
    gateway: httpx.Client, alice: dict[str, str], bob: dict[str, str]
) -> None:
    order_id = place(gateway, alice, a_product(gateway)["id"]).json()["id"]
    assert gateway.get(f"/api/orders/{order_id}", headers=bob).status_code == 404
    assert order_id not in [o["id"] for o in gateway.get("/api/orders", headers=bob).json()]
