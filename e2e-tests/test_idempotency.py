"""A client that retries with an Idempotency-Key gets one order, however often it asks.

What a client does after a timeout (the gateway's 504 while order may still be
placing the order): the same request again, with the same key. It must get the
first request's order, and the stock must go down once.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from e2e_support import GOOD_CARD, System, available, bearer, eventually, login


@pytest.fixture(scope="module")
def alice(system: System) -> dict[str, str]:
    return bearer(login(system.auth, "alice"))


def test_the_same_request_with_one_key_is_one_order(
    gateway: httpx.Client, alice: dict[str, str]
) -> None:
    products: list[dict[str, Any]] = gateway.get("/api/products").json()
    product = max(products, key=lambda p: p["available"])
    before = available(gateway, product["id"])
    body = {"items": [{"product_id": product["id"], "quantity": 2}], "card": GOOD_CARD}
    headers = {**alice, "Idempotency-Key": f'"{uuid.uuid4()}"'}

    first = gateway.post("/api/orders", json=body, headers=headers)
    assert first.status_code == 201, first.text
    order_id = first.json()["id"]
    again = gateway.post("/api/orders", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.json()["id"] == order_id
    assert available(gateway, product["id"]) == before - 2

    # Paid meanwhile: a retry still gets that order, as it is now, and places nothing.
    eventually(
        lambda: (
            gateway.get(f"/api/orders/{order_id}", headers=alice).json()["status"] == "CONFIRMED"
        ),
        "the payment",
    )
    later = gateway.post("/api/orders", json=body, headers=headers)
    assert (later.status_code, later.json()["id"]) == (201, order_id), later.text
    assert later.json()["status"] == "CONFIRMED"
    assert available(gateway, product["id"]) == before - 2

    # The key belongs to that order: another request under it is refused, not placed.
    other = {**body, "items": [{"product_id": product["id"], "quantity": 1}]}
    reused = gateway.post("/api/orders", json=other, headers=headers)
    assert reused.status_code == 422, reused.text
    assert reused.json()["type"] == "https://hopshop.example/problems/idempotency-key-reused"
    assert available(gateway, product["id"]) == before - 2
