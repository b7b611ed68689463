"""Orders left unpaid: the customer cancels, or the scheduler expires them; stock comes back.
And one customer's unpaid orders may hold only so much (order's ORDER_MAX_OPEN_ORDERS, 5)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from e2e_support import System, available, bearer, eventually, login

# The simulated provider's "authentication required" card (the familiar test-card
# convention): the payment never completes, so the order stays unpaid.
PENDING_CARD = "4000000000003063"


@pytest.fixture(scope="module")
def alice(system: System) -> dict[str, str]:
    return bearer(login(system.auth, "alice"))


def unpaid_order(gateway: httpx.Client, alice: dict[str, str]) -> tuple[dict[str, Any], int]:
    products: list[dict[str, Any]] = gateway.get("/api/products").json()
    product = next(p for p in products if p["available"] >= 1)
    before = available(gateway, product["id"])
    body = {"items": [{"product_id": product["id"], "quantity": 1}], "card": PENDING_CARD}
    placed = gateway.post("/api/orders", json=body, headers=alice)
    assert placed.status_code == 201, placed.text
    assert available(gateway, product["id"]) == before - 1
    return placed.json(), before


def test_customer_cancels_an_unpaid_order(gateway: httpx.Client, alice: dict[str, str]) -> None:
    order, before = unpaid_order(gateway, alice)
    response = gateway.post(f"/api/orders/{order['id']}/cancel", headers=alice)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    assert response.json()["reason"] == "customer"
    product_id = order["items"][0]["product_id"]
    assert available(gateway, product_id) == before
    again = gateway.post(f"/api/orders/{order['id']}/cancel", headers=alice)
    assert again.status_code == 409


def test_the_scheduler_expires_an_unpaid_order(
    gateway: httpx.Client, alice: dict[str, str]
) -> None:
    # No endpoint tells a stack's payment timeout, so a stack of your own (--base-url) needs
    # the suite's settings (conftest.py): by order's default (900 s) nothing expires in 45 s.
    order, before = unpaid_order(gateway, alice)
    expired = eventually(
        lambda: (
            (o := gateway.get(f"/api/orders/{order['id']}", headers=alice).json())["status"]
            == "CANCELLED"
            and o
        ),
        "the expiry job; with --base-url, start the stack with ORDER_PAYMENT_TIMEOUT=12 "
        "ORDER_EXPIRY_INTERVAL=1 (e2e-tests/README.md)",
        timeout=45,
    )
    assert expired["reason"] == "expired"
    assert available(gateway, order["items"][0]["product_id"]) == before


def test_a_customer_with_too_many_unpaid_orders_is_refused_until_one_is_cancelled(
    system: System, gateway: httpx.Client
) -> None:
    # bob, so that alice's unpaid orders in the tests above do not count.
    bob = bearer(login(system.auth, "bob"))
    for left in gateway.get("/api/orders", headers=bob).json():
        if left["status"] == "PENDING_PAYMENT":
            cancel(gateway, bob, left["id"])
    products: list[dict[str, Any]] = gateway.get("/api/products").json()
    product = max(products, key=lambda p: p["available"])
    body = {"items": [{"product_id": product["id"], "quantity": 1}], "card": PENDING_CARD}

    # Quick, all of it: these orders expire after ORDER_PAYMENT_TIMEOUT (12 s in the e2e stack).
    placed = [gateway.post("/api/orders", json=body, headers=bob) for _ in range(5)]
    assert [p.status_code for p in placed] == [201] * 5, [p.text for p in placed]
    before = available(gateway, product["id"])
    refused = gateway.post("/api/orders", json=body, headers=bob)

    # order's problem, as order wrote it: the gateway passes it on unchanged.
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"] == "https://hopshop.example/problems/too-many-unpaid-orders"
    assert problem["title"] == "Too many unpaid orders"
    assert problem["detail"] == (
        "you have 5 unpaid orders (at most 5 at a time); pay or cancel one first"
    )
    assert (problem["open_orders"], problem["max_open_orders"]) == (5, 5)
    assert available(gateway, product["id"]) == before  # nothing reserved
    newest = gateway.get("/api/orders", headers=bob).json()[0]
    assert newest["id"] == placed[-1].json()["id"]  # nothing stored

    cancelled = gateway.post(f"/api/orders/{placed[0].json()['id']}/cancel", headers=bob)
    assert cancelled.status_code == 200, cancelled.text
    again = gateway.post("/api/orders", json=body, headers=bob)
    assert again.status_code == 201, again.text

    for order in [*placed[1:], again]:
        cancel(gateway, bob, order.json()["id"])


def cancel(gateway: httpx.Client, who: dict[str, str], order_id: str) -> None:
    """Cancel an unpaid order; one the expiry job cancelled first (409) is fine too."""
    response = gateway.post(f"/api/orders/{order_id}/cancel", headers=who)
    assert response.status_code in (200, 409), response.text
