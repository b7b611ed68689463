"""Support access, broadcasts, and what the edge does: auth errors, rate limit, trace ids."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from e2e_support import GOOD_CARD, System, bearer, eventually, login


@pytest.fixture(scope="module")
def alice(system: System) -> dict[str, str]:
    return bearer(login(system.auth, "alice"))


@pytest.fixture(scope="module")
def carol(system: System) -> dict[str, str]:
    return bearer(login(system.auth, "carol"))


def test_support_staff_can_view_a_customers_order(
    gateway: httpx.Client, alice: dict[str, str], carol: dict[str, str]
) -> None:
    products: list[dict[str, Any]] = gateway.get("/api/products").json()
    body = {"items": [{"product_id": products[0]["id"], "quantity": 1}], "card": GOOD_CARD}
    order_id = gateway.post("/api/orders", json=body, headers=alice).json()["id"]

    viewed = gateway.get(f"/api/support/orders/{order_id}", headers=carol)
    assert viewed.status_code == 200, viewed.text
    assert viewed.json()["id"] == order_id
    # A customer has no support:read.
    assert gateway.get(f"/api/support/orders/{order_id}", headers=alice).status_code == 403


def test_a_broadcast_reaches_customers(
    gateway: httpx.Client, alice: dict[str, str], carol: dict[str, str]
) -> None:
    message = "Maintenance tonight at 22:00"
    sent = gateway.post("/api/broadcasts", json={"message": message}, headers=carol)
    assert sent.status_code == 201, sent.text
    eventually(
        lambda: [
            n
            for n in gateway.get("/api/notifications", headers=alice).json()
            if n["message"] == message and n["broadcast"]
        ],
        "the broadcast",
    )
    assert gateway.post("/api/broadcasts", json={"message": "x"}, headers=alice).status_code == 403


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YWxpY2U6cHc="}],
)
def test_orders_need_a_valid_user_token(gateway: httpx.Client, headers: dict[str, str]) -> None:
    response = gateway.get("/api/orders", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_request_id_is_echoed_and_created_at_the_edge(gateway: httpx.Client) -> None:
    assert (
        gateway.get("/api/products", headers={"x-request-id": "e2e-42"}).headers["x-request-id"]
        == "e2e-42"
    )
    assert gateway.get("/api/products").headers["x-request-id"]


def test_per_user_rate_limit(system: System) -> None:
    token = bearer(login(system.auth, "bob"))
    with httpx.Client(base_url=system.gateway, timeout=15) as client:
        statuses = [client.get("/api/orders", headers=token).status_code for _ in range(60)]
        assert 429 in statuses, statuses
        limited = client.get("/api/orders", headers=token)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["content-type"].startswith("application/problem+json")
