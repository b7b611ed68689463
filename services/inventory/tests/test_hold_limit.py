"""A product's ``max_held_per_customer``: the units one customer's unpaid reservations may hold.

Without it one customer could hold every unit of a scarce product (the demo's
HOP-LAST has 3) with orders never paid, renewed as they expire.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from auth_testing import mint
from hopkit.testing import ServerThread, ValkeyServer
from inventory_service.app import create_app
from inventory_testing import (
    add_product,
    assert_problem,
    available,
    bearer,
    make_settings,
    reservation,
    reserve_token,
)

LIMIT = "hold-limit-reached"


@pytest.fixture(scope="module")
def bob(auth: httpx.Client) -> str:
    return reserve_token(auth, "bob")


def reservations_of(database_url: str, order_id: str) -> int:
    path = database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        row = connection.execute(
            "SELECT count(*) FROM reservations WHERE order_id = ?", (order_id,)
        ).fetchone()
    return int(row[0])


def reserve(
    http: httpx.Client, token: str, order_id: str, *lines: tuple[int, int]
) -> httpx.Response:
    return http.post("/reservations", json=reservation(order_id, *lines), headers=bearer(token))


def test_holding_the_cap_refuses_more_until_released_or_sold(
    http: httpx.Client, database_url: str, reserver: str, bob: str, order_service: str
) -> None:
    product = add_product(database_url, 10, max_held_per_customer=1)
    assert reserve(http, reserver, "cap-1", (product, 1)).status_code == 201

    refused = reserve(http, reserver, "cap-2", (product, 1))
    problem = assert_problem(refused, 409, LIMIT)
    assert problem["title"] == "Hold limit reached"
    assert problem["detail"] == (
        "you already hold 1 unit of 'Test product' unpaid, and one customer may hold at most "
        "1; pay or cancel an order holding it first"
    )
    assert (problem["product_id"], problem["limit"], problem["held"]) == (product, 1, 1)
    assert problem["requested"] == 1
    assert problem["sku"].startswith("TEST-")
    assert problem["name"] == "Test product"
    # Nothing held, no reservation row: the order id is still free.
    assert available(http, product) == 9
    assert reservations_of(database_url, "cap-2") == 0

    # The cap is per customer: bob is not held back by alice's order.
    assert reserve(http, bob, "cap-bob", (product, 1)).status_code == 201
    assert available(http, product) == 8

    # Released (cancelled or expired): alice may hold one again.
    released = http.post("/reservations/cap-1/release", headers=bearer(order_service))
    assert released.status_code == 200, released.text
    assert reserve(http, reserver, "cap-2", (product, 1)).status_code == 201

    # Sold (paid): those units are hers, no longer held; she may hold one more.
    sold = http.post("/reservations/cap-2/commit", headers=bearer(order_service))
    assert sold.status_code == 200, sold.text
    assert reserve(http, reserver, "cap-3", (product, 1)).status_code == 201
    assert_problem(reserve(http, reserver, "cap-4", (product, 1)), 409, LIMIT)
    assert available(http, product) == 7  # 10 - bob's - one sold - cap-3


def test_the_cap_counts_every_unpaid_reservation_and_refuses_all_lines(
    http: httpx.Client, database_url: str, reserver: str
) -> None:
    plenty = add_product(database_url, 50)
    capped = add_product(database_url, 50, max_held_per_customer=2)
    assert reserve(http, reserver, "cap-sum-1", (capped, 1)).status_code == 201
    assert reserve(http, reserver, "cap-sum-2", (capped, 1)).status_code == 201

    refused = reserve(http, reserver, "cap-sum-3", (plenty, 5), (capped, 1))
    problem = assert_problem(refused, 409, LIMIT)
    assert (problem["product_id"], problem["held"], problem["requested"]) == (capped, 2, 1)
    assert problem["detail"] == (
        "you already hold 2 units of 'Test product' unpaid, and one customer may hold at most "
        "2; pay or cancel an order holding it first"
    )
    # All or nothing: the uncapped line was not held either.
    assert (available(http, plenty), available(http, capped)) == (50, 48)


def test_some_held_and_this_order_would_pass_the_cap_is_a_409(
    http: httpx.Client, database_url: str, reserver: str
) -> None:
    capped = add_product(database_url, 50, max_held_per_customer=2)
    assert reserve(http, reserver, "cap-part-1", (capped, 1)).status_code == 201

    problem = assert_problem(reserve(http, reserver, "cap-part-2", (capped, 2)), 409, LIMIT)
    assert (problem["held"], problem["requested"], problem["limit"]) == (1, 2, 2)
    assert problem["detail"] == (
        "you already hold 1 unit of 'Test product' unpaid, and this order's 2 more would pass "
        "the limit of 2 per customer; pay or cancel an order holding it first"
    )
    assert available(http, capped) == 49
    assert reservations_of(database_url, "cap-part-2") == 0


def test_one_order_alone_over_the_cap_is_a_422_and_holds_nothing(
    http: httpx.Client, database_url: str, reserver: str
) -> None:
    # Nothing held before: no payment or cancellation could ever let this order through.
    plenty = add_product(database_url, 50)
    alone = add_product(database_url, 50, max_held_per_customer=2)
    refused = reserve(http, reserver, "cap-alone", (plenty, 1), (alone, 3))
    problem = assert_problem(refused, 422, "over-hold-limit")
    assert problem["title"] == "Over the hold limit"
    assert problem["detail"] == (
        "one customer may hold at most 2 units of 'Test product' unpaid; this order asks for 3"
    )
    assert (problem["product_id"], problem["limit"], problem["requested"]) == (alone, 2, 3)
    assert problem["sku"].startswith("TEST-")
    assert "held" not in problem
    # Nothing held, not even the uncapped line, and no reservation row: the id is still free.
    assert (available(http, plenty), available(http, alone)) == (50, 50)
    assert reservations_of(database_url, "cap-alone") == 0
    assert reserve(http, reserver, "cap-alone", (alone, 2)).status_code == 201

    # A cap of one says "unit".
    single = add_product(database_url, 5, max_held_per_customer=1)
    problem = assert_problem(
        reserve(http, reserver, "cap-one", (single, 2)), 422, "over-hold-limit"
    )
    assert problem["detail"].startswith("one customer may hold at most 1 unit of 'Test product'")


def test_a_token_with_no_customer_behind_it_reserves_nothing(
    http: httpx.Client, database_url: str, auth_server: ServerThread
) -> None:
    # No flow issues order a client-credentials token with inventory:reserve; if one did, it
    # would hold units in order's own name, past every customer's cap.
    product = add_product(database_url, 10, max_held_per_customer=1)
    token = mint(
        auth_server,
        audience="inventory",
        client_id="order",
        subject="order",
        scopes=["inventory:reserve"],
    )
    problem = assert_problem(
        reserve(http, token, "cap-svc", (product, 1)), 403, "customer-required"
    )
    assert "no user" in problem["detail"]
    assert available(http, product) == 10
    assert reservations_of(database_url, "cap-svc") == 0


def test_the_seed_caps_scarce_products_also_in_an_existing_database(
    tmp_path: Path, issuer: str, valkey: ValkeyServer
) -> None:
    settings = make_settings(tmp_path, issuer, redis_url=valkey.url)
    path = settings.database_url.removeprefix("sqlite:///")

    def caps() -> dict[str, int | None]:
        with (
            ServerThread(create_app(settings)) as server,
            httpx.Client(base_url=server.base_url, timeout=10) as client,
        ):
            return {p["sku"]: p["max_held_per_customer"] for p in client.get("/products").json()}

    first = caps()
    assert (first["HOP-LAST"], first["HOP-KEY"], first["HOP-MUG"]) == (1, 2, None)
    # A database seeded before the caps existed: migration 0002 left every product uncapped.
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE products SET max_held_per_customer = NULL")
    assert caps() == first
