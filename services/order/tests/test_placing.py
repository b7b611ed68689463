"""Placing orders: prices from the catalogue, stock reserved at inventory with a token
exchanged again, the order and its event stored together, the card kept masked."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from auth_testing import login
from hopkit.events import ORDER_PLACED, Envelope
from hopkit.testing import KafkaBroker, ServerThread
from inventory_testing import add_product
from order_service.inventory import Inventory, Product
from order_testing import (
    CARD,
    assert_problem,
    available,
    bearer,
    events_for,
    order_body,
    reservation_status,
    sqlite_count,
)


def test_placing_reserves_stock_stores_the_order_and_announces_only_its_id(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    kafka: KafkaBroker,
    alice: str,
    alice_id: str,
) -> None:
    mug = add_product(inventory_db, 10, price_cents=1290)
    tee = add_product(inventory_db, 5, price_cents=2490)
    # The same product twice is one line; prices sent by the client would be refused.
    response = http.post(
        "/orders", json=order_body((tee, 1), (mug, 2), (tee, 1)), headers=bearer(alice)
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["id"].startswith("ord_")
    assert order["status"] == "PENDING_PAYMENT"
    assert order["reason"] is None
    assert order["customer_id"] == alice_id
    assert [(i["product_id"], i["quantity"], i["unit_price_cents"]) for i in order["items"]] == [
        (mug, 2, 1290),
        (tee, 2, 2490),
    ]
    assert order["items"][0]["sku"].startswith("TEST-")
    assert order["total_cents"] == 2 * 1290 + 2 * 2490
    assert order["currency"] == "EUR"
    assert order["card"] == {"masked": "424242******4242"}
    assert order["created_at"].endswith("Z") or order["created_at"].endswith("+00:00")

    # Inventory holds the units under this order's id.
    assert (available(inventory, mug), available(inventory, tee)) == (8, 3)
    assert reservation_status(inventory_db, order["id"]) == "RESERVED"

    # order.placed carries the order id and the customer, nothing else: no token, no card.
    [record] = events_for(kafka.bootstrap, ORDER_PLACED, order["id"])
    envelope = Envelope.parse(record.value)
    assert envelope.type == ORDER_PLACED
    assert envelope.producer == "order"
    assert envelope.subject == alice_id
    assert envelope.data == {"order_id": order["id"]}
    raw = record.value.decode()
    assert alice not in raw and "eyJ" not in raw
    assert CARD not in raw and "4242" not in raw
    headers = dict(record.headers)
    assert headers["traceparent"].startswith(b"00-")


def test_customers_see_their_own_orders_only(
    http: httpx.Client, inventory_db: str, alice: str, bob: str
) -> None:
    product = add_product(inventory_db, 10)
    placed = http.post("/orders", json=order_body((product, 1)), headers=bearer(alice)).json()

    mine = http.get("/orders", headers=bearer(alice))
    assert mine.status_code == 200, mine.text
    assert placed["id"] in [o["id"] for o in mine.json()]
    assert mine.json()[0]["id"] == placed["id"]  # newest first
    one = http.get(f"/orders/{placed['id']}", headers=bearer(alice))
    assert one.status_code == 200
    assert one.json() == placed

    # bob: alice's order does not exist for him, and it is not in his list.
    assert_problem(http.get(f"/orders/{placed['id']}", headers=bearer(bob)), 404, "order-not-found")
    assert placed["id"] not in [o["id"] for o in http.get("/orders", headers=bearer(bob)).json()]
    assert_problem(http.get("/orders/ord_nope", headers=bearer(alice)), 404, "order-not-found")


def test_insufficient_stock_is_a_409_and_nothing_is_stored_or_announced(
    http: httpx.Client, inventory: httpx.Client, inventory_db: str, order_db: str, alice: str
) -> None:
    plenty, scarce = add_product(inventory_db, 10), add_product(inventory_db, 2)
    orders_before = sqlite_count(order_db, "SELECT count(*) FROM orders")
    outbox_before = sqlite_count(order_db, "SELECT count(*) FROM outbox")

    response = http.post(
        "/orders", json=order_body((plenty, 4), (scarce, 3)), headers=bearer(alice)
    )
    problem = assert_problem(response, 409, "insufficient-stock")
    assert (problem["product_id"], problem["requested"], problem["available"]) == (scarce, 3, 2)
    assert (available(inventory, plenty), available(inventory, scarce)) == (10, 2)
    assert sqlite_count(order_db, "SELECT count(*) FROM orders") == orders_before
    assert sqlite_count(order_db, "SELECT count(*) FROM outbox") == outbox_before


def test_bad_cards_and_items_are_422_and_never_echo_the_card(
    http: httpx.Client, inventory: httpx.Client, inventory_db: str, alice: str
) -> None:
    product = add_product(inventory_db, 5)
    bad_luhn = "4242424242424241"
    for card in (bad_luhn, "424242424242", "4242-4242-4242-4242", "42424242424242424242"):
        response = http.post(
            "/orders", json=order_body((product, 1), card=card), headers=bearer(alice)
        )
        problem = assert_problem(response, 422)
        assert problem["errors"][0]["loc"] == ["body", "card"], problem
        assert card not in response.text and "4242" not in response.text
    for body in (
        {"items": [], "card": CARD},
        {"items": [{"product_id": product, "quantity": 0}], "card": CARD},
        {"items": [{"product_id": str(product), "quantity": 1}], "card": CARD},
        {"items": [{"product_id": product, "quantity": 1, "price_cents": 1}], "card": CARD},
        {"items": [{"product_id": product, "quantity": 1}], "card": 4242424242424242},
        {"items": [{"product_id": product, "quantity": 1}]},
    ):
        assert_problem(http.post("/orders", json=body, headers=bearer(alice)), 422)
    not_json = http.post(
        "/orders",
        content=b"{not json",
        headers={"Content-Type": "application/json", **bearer(alice)},
    )
    assert_problem(not_json, 422)
    unknown = http.post("/orders", json=order_body((2**31 - 2, 1)), headers=bearer(alice))
    assert_problem(unknown, 422, "unknown-product")
    too_many = http.post(
        "/orders", json=order_body((product, 600), (product, 600)), headers=bearer(alice)
    )
    assert_problem(too_many, 422, "quantity-too-large")
    assert available(inventory, product) == 5


def test_only_a_token_exchanged_by_the_gateway_for_order_is_accepted(
    http: httpx.Client, auth: httpx.Client, inventory_db: str, billing_worker: str
) -> None:
    product = add_product(inventory_db, 5)
    body = order_body((product, 1))
    missing = http.post("/orders", json=body)
    assert_problem(missing, 401, "urn:hopauth:problem:missing-token")
    # The user's own token is for the gateway, not for order.
    user = login(auth, "bob").access_token
    assert_problem(
        http.post("/orders", json=body, headers=bearer(user)),
        401,
        "urn:hopauth:problem:invalid-token",
    )
    # The billing worker may read orders but not place them.
    assert_problem(
        http.post("/orders", json=body, headers=bearer(billing_worker)),
        403,
        "urn:hopauth:problem:insufficient-scope",
    )
    assert_problem(
        http.get("/orders", headers=bearer(billing_worker)),
        403,
        "urn:hopauth:problem:forbidden-caller",
    )


def test_catalogue_reads_are_reused_for_a_few_seconds(
    inventory_server: ServerThread, inventory_db: str
) -> None:
    product = add_product(inventory_db, 5, price_cents=990)
    unknown = 2_000_000_000
    sent: list[str] = []

    async def count(request: httpx.Request) -> None:
        sent.append(request.url.path)

    async def read_twice(ttl: float) -> list[Product | None]:
        async with httpx.AsyncClient(
            base_url=inventory_server.base_url, event_hooks={"request": [count]}
        ) as client:
            catalogue = Inventory(client, settle=httpx.Auth(), catalogue_ttl=ttl)
            return [await catalogue.product(pid) for pid in (product, product, unknown, unknown)]

    first, again, missing, still_missing = asyncio.run(read_twice(5.0))
    assert first is not None and first.price_cents == 990 and again == first
    assert missing is None and still_missing is None
    # A product is read once; an unknown one is asked about every time (nothing to keep).
    assert sent == [f"/products/{product}", f"/products/{unknown}", f"/products/{unknown}"]

    sent.clear()
    asyncio.run(read_twice(0.0))
    assert len(sent) == 4


@pytest.mark.parametrize("content_type", ["text/plain", None])
def test_an_order_sent_as_another_media_type_is_a_415(
    http: httpx.Client, inventory_db: str, alice: str, content_type: str | None
) -> None:
    product = add_product(inventory_db, 5)
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = http.post(
        "/orders",
        content=json.dumps(order_body((product, 1))).encode(),
        headers={**headers, **bearer(alice)},
    )
    problem = assert_problem(response, 415)
    assert problem["detail"] == "Content-Type must be application/json."


def test_a_token_as_a_key_is_not_echoed_in_the_422(
    http: httpx.Client, inventory_db: str, alice: str
) -> None:
    body = {**order_body((add_product(inventory_db, 5), 1)), alice: 1}
    response = http.post("/orders", json=body, headers=bearer(alice))
    problem = assert_problem(response, 422)
    assert problem["errors"] == [
        {"loc": ["body", "[redacted]"], "msg": "Extra inputs are not permitted"}
    ]
    assert "eyJ" not in response.text
