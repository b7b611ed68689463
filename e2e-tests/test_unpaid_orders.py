"""Orders left unpaid: the customer cancels, or the scheduler expires them; stock comes back."""

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
