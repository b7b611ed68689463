"""The shop through the gateway, with every service and worker real: order, pay, read.

alice buys; billing's worker charges via Kafka; order confirms; notification
tells her. bob sees none of it. carol (support) looks at alice's order and
broadcasts. Every hop carries a token made for it, and one trace id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from auth_testing import Login, claims, login
from gateway_testing import (
    TRACE_ID,
    TRACEPARENT,
    StartGateway,
    access_lines,
    assert_problem,
    bearer,
)
from hopkit.testing import eventually

PAYS = "4242424242424242"
DECLINED = "4000000000000002"


@contextmanager
def capture_all() -> Iterator[list[str]]:
    """Every log record of every service in this process, message and extras, as text."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(f"{record.getMessage()} {record.__dict__}")

    handler = Keep(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        yield lines
    finally:
        logging.getLogger().removeHandler(handler)


@pytest.fixture(scope="module")
def product(http: httpx.Client) -> dict[str, Any]:
    products = http.get("/api/products").json()
    chosen: dict[str, Any] = max(products, key=lambda p: p["available"])
    assert chosen["available"] >= 10
    return chosen


def place(
    http: httpx.Client, user: Login, product_id: int, *, card: str = PAYS, quantity: int = 1
) -> httpx.Response:
    return http.post(
        "/api/orders",
        json={"items": [{"product_id": product_id, "quantity": quantity}], "card": card},
        headers=bearer(user.access_token),
    )


def order_status(
    http: httpx.Client, user: Login, order_id: str, *wanted: str
) -> dict[str, Any] | None:
    order: dict[str, Any] = http.get(
        f"/api/orders/{order_id}", headers=bearer(user.access_token)
    ).json()
    return order if order["status"] in wanted else None


def available(http: httpx.Client, product_id: int) -> int:
    [product] = [p for p in http.get("/api/products").json() if p["id"] == product_id]
    units: int = product["available"]
    return units


@pytest.fixture(scope="module")
def alices_order(http: httpx.Client, alice: Login, product: dict[str, Any]) -> dict[str, Any]:
    response = place(http, alice, product["id"], quantity=2)
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


def test_alice_places_an_order(alices_order: dict[str, Any], product: dict[str, Any]) -> None:
    assert alices_order["status"] == "PENDING_PAYMENT"
    assert alices_order["items"][0]["product_id"] == product["id"]
    assert alices_order["items"][0]["quantity"] == 2
    assert alices_order["total_cents"] == 2 * product["price_cents"]
    assert alices_order["currency"] == product["currency"]
    assert "4242424242424242" not in str(alices_order)


def test_alice_lists_and_reads_her_order(
    http: httpx.Client, alice: Login, alices_order: dict[str, Any]
) -> None:
    listed = http.get("/api/orders", headers=bearer(alice.access_token))
    assert listed.status_code == 200, listed.text
    assert alices_order["id"] in {o["id"] for o in listed.json()}
    one = http.get(f"/api/orders/{alices_order['id']}", headers=bearer(alice.access_token))
    assert one.status_code == 200, one.text
    assert one.json()["id"] == alices_order["id"]
    # Answers made for alice must not be kept by a browser or a proxy (RFC 9111 §5.2.2.5).
    assert listed.headers["cache-control"] == "no-store"
    assert one.headers["cache-control"] == "no-store"
    assert "cache-control" not in http.get("/api/products").headers


def test_bob_gets_a_404_for_alices_order(
    http: httpx.Client, bob: Login, alices_order: dict[str, Any]
) -> None:
    headers = bearer(bob.access_token)
    assert_problem(http.get(f"/api/orders/{alices_order['id']}", headers=headers), 404)
    assert_problem(http.post(f"/api/orders/{alices_order['id']}/cancel", headers=headers), 404)
    assert alices_order["id"] not in {
        o["id"] for o in http.get("/api/orders", headers=headers).json()
    }


def test_the_order_is_paid_and_confirmed(
    http: httpx.Client, alice: Login, bob: Login, alices_order: dict[str, Any]
) -> None:
    order_id = alices_order["id"]
    eventually(lambda: order_status(http, alice, order_id, "CONFIRMED"), "the order confirmed")

    def invoice() -> dict[str, Any] | None:
        invoices = http.get("/api/invoices", headers=bearer(alice.access_token)).json()
        return next((i for i in invoices if i["order_id"] == order_id), None)

    paid = eventually(invoice, "alice's invoice")
    assert paid["status"] == "PAID"
    assert paid["amount_cents"] == alices_order["total_cents"]
    bobs = http.get("/api/invoices", headers=bearer(bob.access_token))
    assert bobs.status_code == 200, bobs.text
    assert order_id not in {i["order_id"] for i in bobs.json()}


def test_alice_is_notified(
    http: httpx.Client, alice: Login, bob: Login, alices_order: dict[str, Any]
) -> None:
    order_id = alices_order["id"]

    def notification() -> dict[str, Any] | None:
        notes = http.get("/api/notifications", headers=bearer(alice.access_token)).json()
        return next((n for n in notes if n["order_id"] == order_id), None)

    note = eventually(notification, "alice's notification")
    assert note["broadcast"] is False
    bobs = http.get("/api/notifications", headers=bearer(bob.access_token)).json()
    assert order_id not in {n["order_id"] for n in bobs}


def test_cancel_releases_the_stock(
    http: httpx.Client, alice: Login, product: dict[str, Any]
) -> None:
    before = available(http, product["id"])
    response = place(http, alice, product["id"], quantity=3)
    assert response.status_code == 201, response.text
    order_id = response.json()["id"]
    assert available(http, product["id"]) == before - 3
    cancelled = http.post(f"/api/orders/{order_id}/cancel", headers=bearer(alice.access_token))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
    assert cancelled.json()["reason"] == "customer"
    assert available(http, product["id"]) == before


def test_cancelling_a_paid_order_is_a_409(
    http: httpx.Client, alice: Login, alices_order: dict[str, Any]
) -> None:
    order_id = alices_order["id"]
    eventually(lambda: order_status(http, alice, order_id, "CONFIRMED"), "the order confirmed")
    response = http.post(f"/api/orders/{order_id}/cancel", headers=bearer(alice.access_token))
    assert_problem(response, 409)


def test_a_declined_card_cancels_the_order(
    http: httpx.Client, alice: Login, product: dict[str, Any]
) -> None:
    response = place(http, alice, product["id"], card=DECLINED)
    assert response.status_code == 201, response.text
    order_id = response.json()["id"]
    order = eventually(
        lambda: order_status(http, alice, order_id, "CANCELLED", "CONFIRMED"), "the payment outcome"
    )
    assert order["status"] == "CANCELLED"
    assert order["reason"] == "payment_declined"


def test_insufficient_stock_is_passed_on_as_409(http: httpx.Client, alice: Login) -> None:
    # The scarcest product, one unit more than it has: within order's limit on what one
    # customer's unpaid orders may hold (ORDER_MAX_OPEN_UNITS), so stock is what refuses it.
    # Uncapped: over a product's max_held_per_customer, inventory answers 422 first.
    uncapped = [p for p in http.get("/api/products").json() if p["max_held_per_customer"] is None]
    scarce = min(uncapped, key=lambda p: p["available"])
    response = place(http, alice, scarce["id"], quantity=scarce["available"] + 1)
    problem = assert_problem(response, 409)
    assert problem["type"].endswith("insufficient-stock")


def test_a_card_failing_luhn_is_passed_on_as_422(
    http: httpx.Client, alice: Login, product: dict[str, Any]
) -> None:
    response = place(http, alice, product["id"], card="4242424242424241")
    assert_problem(response, 422)


def test_an_unknown_order_is_a_404(http: httpx.Client, alice: Login) -> None:
    assert_problem(http.get("/api/orders/no-such-order", headers=bearer(alice.access_token)), 404)


def test_support_staff_see_any_order_as_its_customer_with_carol_in_act(
    http: httpx.Client, carol: Login, alice: Login, alices_order: dict[str, Any]
) -> None:
    owner_path, view_path = (
        f"/support/orders/{alices_order['id']}/owner",
        f"/orders/{alices_order['id']}",
    )
    with access_lines() as lines:
        response = http.get(
            f"/api/support/orders/{alices_order['id']}", headers=bearer(carol.access_token)
        )
        lines.wait_for(owner_path, view_path)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == alices_order["id"]
    alice_id, carol_id = (claims(user.access_token)["sub"] for user in (alice, carol))
    assert response.json()["customer_id"] == alice_id

    # Who owns it: asked with carol's own token, exchanged for order.
    [lookup] = lines.requests(owner_path)
    assert lookup["token"]["sub"] == carol_id
    assert lookup["token"]["act"] == ["gateway"]
    assert lookup["token"]["scope"] == ["support:read"]
    # The order itself: read as alice, carol under the gateway in act, and logged so.
    [view] = lines.requests(view_path)
    assert view["token"]["sub"] == alice_id
    assert view["token"]["act"] == ["gateway", carol_id]
    assert view["token"]["client_id"] == "gateway"
    assert view["token"]["scope"] == ["orders:read"]
    assert (view["customer"], view["acted_by"]) == (alice_id, carol_id)


def test_support_access_to_an_unknown_order_is_a_404(http: httpx.Client, carol: Login) -> None:
    response = http.get("/api/support/orders/no-such-order", headers=bearer(carol.access_token))
    assert_problem(response, 404)


def test_support_staff_cannot_act_for_themselves(
    http: httpx.Client, carol: Login, product: dict[str, Any]
) -> None:
    """carol's own order: the issuer lets support staff act for customers only."""
    placed = place(http, carol, product["id"])
    assert placed.status_code == 201, placed.text
    response = http.get(
        f"/api/support/orders/{placed.json()['id']}", headers=bearer(carol.access_token)
    )
    assert_problem(response, 403, "delegation-refused")


def test_a_broadcast_reaches_every_customer(
    http: httpx.Client, carol: Login, alice: Login, bob: Login
) -> None:
    message = f"shop closes early today ({time.monotonic_ns()})"
    response = http.post(
        "/api/broadcasts", json={"message": message}, headers=bearer(carol.access_token)
    )
    assert response.status_code == 201, response.text
    for user in (alice, bob):
        notes = http.get("/api/notifications", headers=bearer(user.access_token)).json()
        [note] = [n for n in notes if n["message"] == message]
        assert note["broadcast"] is True


def test_an_empty_broadcast_is_a_422(http: httpx.Client, carol: Login) -> None:
    response = http.post(
        "/api/broadcasts", json={"message": ""}, headers=bearer(carol.access_token)
    )
    assert_problem(response, 422)


def test_one_trace_id_from_the_edge_through_order_to_inventory(
    http: httpx.Client, alice: Login, product: dict[str, Any]
) -> None:
    with access_lines() as lines:
        response = http.post(
            "/api/orders",
            json={"items": [{"product_id": product["id"], "quantity": 1}], "card": PAYS},
            headers={**bearer(alice.access_token), "traceparent": TRACEPARENT},
        )
        lines.wait_for("/api/orders", "/orders", "/reservations")
    assert response.status_code == 201, response.text
    request_id = response.headers["x-request-id"]
    for path in ("/api/orders", "/orders", "/reservations"):
        [line] = lines.requests(path)
        assert line["trace_id"] == TRACE_ID, (path, line)
        assert line["request_id"] == request_id, (path, line)


def test_repeated_calls_reuse_exchanged_tokens(http: httpx.Client, bob: Login) -> None:
    before = http.get("/stats").json()["token_exchange"]
    for _ in range(10):
        assert http.get("/api/orders", headers=bearer(bob.access_token)).status_code == 200
    after = http.get("/stats").json()["token_exchange"]
    assert after["misses"] - before["misses"] <= 1
    assert after["hits"] - before["hits"] >= 9


@pytest.fixture(scope="module")
def forwarding(start_gateway: StartGateway) -> Iterator[httpx.Client]:
    server = start_gateway(propagation="forward")
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


def test_forwarded_tokens_are_refused_by_an_order_service_that_checks_audience(
    forwarding: httpx.Client, alice: Login
) -> None:
    # The teaching point: the user's token (aud gateway) is not a token for order.
    response = forwarding.get("/api/orders", headers=bearer(alice.access_token))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert response.headers["x-hopshop-mode"] == "vulnerable-forwarding"
    assert "www-authenticate" not in response.headers


def test_no_token_is_ever_logged(
    http: httpx.Client, auth: httpx.Client, product: dict[str, Any]
) -> None:
    session = login(auth, "alice")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    try:
        with capture_all() as lines:
            place(http, session, product["id"])
            http.get("/api/orders", headers=bearer(session.access_token))
            http.get("/api/orders", headers=bearer(session.access_token + "x"))
    finally:
        root.setLevel(level)
    assert any("'path': '/api/orders'" in line for line in lines), "the gateway logged its requests"
    assert any("'path': '/reservations'" in line for line in lines), "and so did inventory"
    signature = session.access_token.rsplit(".", 1)[1]
    assert not [line for line in lines if signature in line or "eyJ" in line]
