"""What a customer does through the gateway, and how the suite sees an attack's effect.

Effects are read the way a customer or an operator would see them: the
order's status, the invoices and notifications the customer can list, the
public stock figure.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from oauth_flows import Login
from stacks import Target

GOOD_CARD = "4242424242424242"
# The simulated provider waits for a cardholder authentication that never comes:
# the order stays PENDING_PAYMENT until it is cancelled or expires.
PENDING_CARD = "4000000000003063"

T = TypeVar("T")


def bearer(user: Login) -> dict[str, str]:
    return {"Authorization": f"Bearer {user.access_token}"}


def eventually(check: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll until ``check`` returns something truthy: events take a moment to flow."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


def products(target: Target) -> list[dict[str, Any]]:
    response = target.gw.get("/api/products")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def stocked_product(target: Target) -> dict[str, Any]:
    """The product with the most units on sale."""
    return max(products(target), key=lambda p: int(p["available"]))


def available(target: Target, product_id: int) -> int:
    [product] = [p for p in products(target) if p["id"] == product_id]
    return int(product["available"])


def place(target: Target, user: Login, card: str = GOOD_CARD) -> dict[str, Any]:
    body = {"items": [{"product_id": stocked_product(target)["id"], "quantity": 1}], "card": card}
    response = target.gw.post("/api/orders", json=body, headers=bearer(user))
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


def order(target: Target, user: Login, order_id: str) -> dict[str, Any]:
    response = target.gw.get(f"/api/orders/{order_id}", headers=bearer(user))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def order_ids(target: Target, user: Login) -> set[str]:
    response = target.gw.get("/api/orders", headers=bearer(user))
    assert response.status_code == 200, response.text
    return {str(o["id"]) for o in response.json()}


def unpaid_ids(target: Target, user: Login) -> set[str]:
    """The user's orders in ``PENDING_PAYMENT``: what counts against order's limits."""
    response = target.gw.get("/api/orders", headers=bearer(user))
    assert response.status_code == 200, response.text
    return {str(o["id"]) for o in response.json() if o["status"] == "PENDING_PAYMENT"}


def cancel_all(target: Target, user: Login, order_ids: set[str] | list[str]) -> None:
    """Cancel the user's unpaid orders: leave no unpaid order holding stock, nor counting
    against the user's limit. One the expiry job cancelled first answers 409; that is fine."""
    for order_id in order_ids:
        response = target.gw.post(f"/api/orders/{order_id}/cancel", headers=bearer(user))
        assert response.status_code in (200, 409), response.text  # else later attacks inherit it


def invoices(target: Target, user: Login, order_id: str) -> list[dict[str, Any]]:
    response = target.gw.get("/api/invoices", headers=bearer(user))
    assert response.status_code == 200, response.text
    return [i for i in response.json() if i["order_id"] == order_id]


def notifications(target: Target, user: Login, order_id: str) -> list[dict[str, Any]]:
    response = target.gw.get("/api/notifications", headers=bearer(user))
    assert response.status_code == 200, response.text
    return [n for n in response.json() if n.get("order_id") == order_id]


def paid_order(target: Target, user: Login) -> dict[str, Any]:
    """A new order, once it is CONFIRMED, invoiced, and both its notifications are stored.

    The notification worker stores one per event: ``payment.succeeded`` and
    ``order.confirmed``.
    """
    placed = place(target, user)
    eventually(
        lambda: order(target, user, placed["id"])["status"] == "CONFIRMED",
        f"order {placed['id']} to be confirmed",
    )
    eventually(lambda: invoices(target, user, placed["id"]), "its invoice")
    eventually(lambda: len(notifications(target, user, placed["id"])) >= 2, "its notifications")
    return order(target, user, placed["id"])


def drain(target: Target, user: Login) -> None:
    """Wait until every consumer has passed everything published so far.

    Each topic has one partition and each consumer group handles it in order,
    so once a new order has gone all the way (placed, charged, confirmed, both
    notifications), every event written to those topics before it has been
    handled (or dead-lettered) too.
    """
    paid_order(target, user)


def unused_order_id() -> str:
    return f"ord_attack_{uuid.uuid4().hex[:16]}"


def until_refused(send: Callable[[], httpx.Response], timeout: float = 5.0) -> httpx.Response:
    """Send until the answer is no longer a success (revocation reaches every service through
    Redis at once, but give it a moment), and return the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        response = send()
        if not response.is_success or time.monotonic() > deadline:
            return response
        time.sleep(0.25)
