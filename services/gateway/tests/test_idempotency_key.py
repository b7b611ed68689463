"""Idempotency-Key on POST /api/orders: checked at the gateway, passed on, kept by order.

The gateway checks the header's format (a 400 naming it, before anything is
exchanged or placed) and sends it to order as it came; order decides what a
repeated request gets (draft-ietf-httpapi-idempotency-key-header-07).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from auth_testing import Login
from gateway_testing import assert_problem, bearer

PAYS = "4242424242424242"
HEADER = "Idempotency-Key"


@pytest.fixture(scope="module")
def product(http: httpx.Client) -> dict[str, Any]:
    chosen: dict[str, Any] = max(http.get("/api/products").json(), key=lambda p: p["available"])
    assert chosen["available"] >= 10
    return chosen


@pytest.fixture
def placed(http: httpx.Client, bob: Login) -> Iterator[list[str]]:
    """Order ids a test placed for bob; still unpaid at the end, they are cancelled."""
    ids: list[str] = []
    yield ids
    for order_id in ids:
        response = http.post(f"/api/orders/{order_id}/cancel", headers=bearer(bob.access_token))
        assert response.status_code in (200, 409), response.text  # 409: paid meanwhile


def post(
    http: httpx.Client,
    user: Login,
    product_id: int,
    headers: list[tuple[str, str]],
    quantity: int = 1,
) -> httpx.Response:
    return http.post(
        "/api/orders",
        json={"items": [{"product_id": product_id, "quantity": quantity}], "card": PAYS},
        headers=[*bearer(user.access_token).items(), *headers],
    )


def available(http: httpx.Client, product_id: int) -> int:
    [product] = [p for p in http.get("/api/products").json() if p["id"] == product_id]
    units: int = product["available"]
    return units


def test_a_retry_with_the_same_key_gets_the_first_order(
    http: httpx.Client, bob: Login, product: dict[str, Any], placed: list[str]
) -> None:
    before = available(http, product["id"])
    # Both escapes of an sf-string: order must see exactly the key the client sent.
    key = f'"{uuid.uuid4()}\\"\\\\"'
    first = post(http, bob, product["id"], [(HEADER, key)], quantity=2)
    assert first.status_code == 201, first.text
    placed.append(first.json()["id"])

    again = post(http, bob, product["id"], [(HEADER, key)], quantity=2)
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert available(http, product["id"]) == before - 2

    # Another key is another order.
    other = post(http, bob, product["id"], [(HEADER, f'"{uuid.uuid4()}"')])
    assert other.status_code == 201, other.text
    placed.append(other.json()["id"])
    assert other.json()["id"] != first.json()["id"]
    assert available(http, product["id"]) == before - 3


def test_a_bare_key_is_taken_too(
    http: httpx.Client, bob: Login, product: dict[str, Any], placed: list[str]
) -> None:
    key = str(uuid.uuid4())
    first = post(http, bob, product["id"], [(HEADER, key)])
    assert first.status_code == 201, first.text
    placed.append(first.json()["id"])
    quoted = post(http, bob, product["id"], [(HEADER, f'"{key}"')])
    assert (quoted.status_code, quoted.json()["id"]) == (201, first.json()["id"]), quoted.text


def test_the_same_key_for_another_order_is_passed_on_as_422(
    http: httpx.Client, bob: Login, product: dict[str, Any], placed: list[str]
) -> None:
    key = f'"{uuid.uuid4()}"'
    first = post(http, bob, product["id"], [(HEADER, key)])
    assert first.status_code == 201, first.text
    placed.append(first.json()["id"])
    problem = assert_problem(
        post(http, bob, product["id"], [(HEADER, key)], quantity=3), 422, "idempotency-key-reused"
    )
    assert problem["header"] == HEADER


@pytest.mark.parametrize(
    "headers",
    [
        [(HEADER, "")],
        [(HEADER, '"two words"')],
        [(HEADER, '"no closing quote')],
        [(HEADER, '"k";a=1')],
        [(HEADER, "a,b")],
        [(HEADER, '"' + "k" * 256 + '"')],
        [(HEADER, '"a"'), (HEADER, '"b"')],
    ],
)
def test_a_malformed_key_is_a_400_naming_the_header_and_nothing_is_placed(
    http: httpx.Client, bob: Login, product: dict[str, Any], headers: list[tuple[str, str]]
) -> None:
    before = available(http, product["id"])
    orders = len(http.get("/api/orders", headers=bearer(bob.access_token)).json())
    problem = assert_problem(
        post(http, bob, product["id"], headers), 400, "invalid-idempotency-key"
    )
    assert problem["title"] == "Invalid Idempotency-Key"
    assert problem["header"] == HEADER
    assert available(http, product["id"]) == before
    assert len(http.get("/api/orders", headers=bearer(bob.access_token)).json()) == orders


def test_the_token_is_checked_before_the_key(http: httpx.Client, product: dict[str, Any]) -> None:
    response = http.post(
        "/api/orders",
        json={"items": [{"product_id": product["id"], "quantity": 1}], "card": PAYS},
        headers={HEADER: '"two words"'},
    )
    assert_problem(response, 401)
