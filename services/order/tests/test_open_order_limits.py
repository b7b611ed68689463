"""What one customer's unpaid orders may hold: a limit on orders and units, checked atomically.

The order services here have databases of their own and low limits (the shared
test server's are out of the way, see order_testing.make_settings): ``strict``
allows 5 unpaid orders holding 20 units, ``expiring`` 1 order, expired after
two seconds by its own expiry job. Neither runs the payment consumer (the
shared server's owns group ``order``): confirmation and decline are checked on
the shared server, by what they give back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hopkit.events import PAYMENT_FAILED, PAYMENT_SUCCEEDED
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer
from inventory_testing import add_product
from order_service.app import create_app
from order_testing import (
    assert_problem,
    available,
    bearer,
    billed,
    customer_holds,
    make_settings,
    order_body,
    order_status,
    place,
    publish,
    sqlite_count,
    wait_for,
)

TOO_MANY = "too-many-unpaid-orders"


class Shop:
    """An order service of its own: its client and its database."""

    def __init__(self, server: ServerThread, client: httpx.Client) -> None:
        self.http = client
        self.db: str = server.app.state.settings.database_url

    def cancel_all(self, token: str) -> None:
        for order in self.http.get("/orders", headers=bearer(token)).json():
            if order["status"] == "PENDING_PAYMENT":
                cancelled = self.http.post(f"/orders/{order['id']}/cancel", headers=bearer(token))
                assert cancelled.status_code == 200, cancelled.text

    def count(self, table: str) -> int:
        return sqlite_count(self.db, f"SELECT count(*) FROM {table}")  # noqa: S608 - our names


def _shop(tmp: Path, issuer: str, **overrides: object) -> Iterator[Shop]:
    settings = make_settings(tmp, issuer, run_payment_consumer=False, **overrides)
    with (
        ServerThread(create_app(settings)) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        yield Shop(server, client)


@pytest.fixture(scope="module")
def strict(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: str,
    valkey: ValkeyServer,
    kafka: KafkaBroker,
    inventory_server: ServerThread,
) -> Iterator[Shop]:
    yield from _shop(
        tmp_path_factory.mktemp("order-strict"),
        issuer,
        redis_url=valkey.url,
        kafka_bootstrap=kafka.bootstrap,
        inventory_url=inventory_server.base_url,
        max_open_orders=5,
        max_open_units=20,
    )


@pytest.fixture(scope="module")
def expiring(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: str,
    valkey: ValkeyServer,
    kafka: KafkaBroker,
    inventory_server: ServerThread,
) -> Iterator[Shop]:
    yield from _shop(
        tmp_path_factory.mktemp("order-expiring"),
        issuer,
        redis_url=valkey.url,
        kafka_bootstrap=kafka.bootstrap,
        inventory_url=inventory_server.base_url,
        max_open_orders=1,
        max_open_units=20,
        run_expiry_scheduler=True,
        payment_timeout=2.0,
        expiry_interval=0.2,
    )


@pytest.fixture(autouse=True)
def nothing_left_open(request: pytest.FixtureRequest, alice: str) -> Iterator[None]:
    """Every test starts with alice at (0, 0) on the strict service, and leaves her there."""
    yield
    if "strict" in request.fixturenames:
        shop: Shop = request.getfixturevalue("strict")
        shop.cancel_all(alice)


def post(shop: Shop, token: str, *lines: tuple[int, int]) -> httpx.Response:
    return shop.http.post("/orders", json=order_body(*lines), headers=bearer(token))


def test_one_order_too_many_is_a_409_and_nothing_is_reserved_stored_or_announced(
    strict: Shop, inventory: httpx.Client, inventory_db: str, alice: str, alice_id: str
) -> None:
    product = add_product(inventory_db, 10)
    placed = [post(strict, alice, (product, 1)) for _ in range(5)]
    assert [r.status_code for r in placed] == [201] * 5, [r.text for r in placed]
    assert customer_holds(strict.db, alice_id) == (5, 5)
    orders, outbox = strict.count("orders"), strict.count("outbox")
    reservations = sqlite_count(inventory_db, "SELECT count(*) FROM reservations")

    refused = post(strict, alice, (product, 1))
    problem = assert_problem(refused, 409, TOO_MANY)
    assert problem["title"] == "Too many unpaid orders"
    assert problem["detail"] == (
        "you have 5 unpaid orders (at most 5 at a time); pay or cancel one first"
    )
    assert (problem["open_orders"], problem["max_open_orders"]) == (5, 5)
    # Nothing reserved at inventory, nothing stored, nothing announced, nothing counted.
    assert available(inventory, product) == 5
    assert sqlite_count(inventory_db, "SELECT count(*) FROM reservations") == reservations
    assert (strict.count("orders"), strict.count("outbox")) == (orders, outbox)
    assert customer_holds(strict.db, alice_id) == (5, 5)

    # Cancelling one frees its place: the next order goes through.
    first = placed[0].json()["id"]
    assert strict.http.post(f"/orders/{first}/cancel", headers=bearer(alice)).status_code == 200
    assert customer_holds(strict.db, alice_id) == (4, 4)
    assert post(strict, alice, (product, 1)).status_code == 201
    assert customer_holds(strict.db, alice_id) == (5, 5)


def test_the_limit_is_per_customer(
    strict: Shop, inventory_db: str, alice: str, bob: str, bob_id: str
) -> None:
    product = add_product(inventory_db, 20)
    for _ in range(5):
        assert post(strict, alice, (product, 1)).status_code == 201
    assert_problem(post(strict, alice, (product, 1)), 409, TOO_MANY)
    # bob is not held back by alice's orders.
    mine = post(strict, bob, (product, 2))
    assert mine.status_code == 201, mine.text
    assert customer_holds(strict.db, bob_id) == (1, 2)
    strict.cancel_all(bob)
    assert customer_holds(strict.db, bob_id) == (0, 0)


def test_units_across_unpaid_orders_are_limited_and_one_order_alone_too(
    strict: Shop, inventory: httpx.Client, inventory_db: str, alice: str, alice_id: str
) -> None:
    mug, tee = add_product(inventory_db, 100), add_product(inventory_db, 100)
    assert post(strict, alice, (mug, 10), (tee, 5)).status_code == 201
    assert customer_holds(strict.db, alice_id) == (1, 15)

    # 15 held + 6 more would pass 20: refused, though she has only one unpaid order.
    problem = assert_problem(post(strict, alice, (mug, 3), (tee, 3)), 409, TOO_MANY)
    assert problem["detail"] == (
        "your 1 unpaid order holds 15 units, and this order's 6 more would pass the limit "
        "of 20; pay or cancel one first"
    )
    assert (problem["open_units"], problem["max_open_units"]) == (15, 20)
    assert (available(inventory, mug), available(inventory, tee)) == (90, 95)

    # Exactly up to the limit is fine.
    assert post(strict, alice, (mug, 5)).status_code == 201
    assert customer_holds(strict.db, alice_id) == (2, 20)

    # One order of more units than the limit can never go through: a 422, not a 409.
    strict.cancel_all(alice)
    orders = strict.count("orders")
    too_large = assert_problem(post(strict, alice, (mug, 11), (tee, 10)), 422, "order-too-large")
    assert (too_large["units"], too_large["max_open_units"]) == (21, 20)
    assert (available(inventory, mug), available(inventory, tee)) == (100, 100)
    assert strict.count("orders") == orders
    assert customer_holds(strict.db, alice_id) == (0, 0)


def test_concurrent_placements_get_exactly_the_limit(
    strict: Shop, inventory: httpx.Client, inventory_db: str, alice: str, alice_id: str
) -> None:
    product = add_product(inventory_db, 50)
    post(strict, alice, (product, 1)).raise_for_status()  # the catalogue entry is cached now
    strict.cancel_all(alice)

    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda _: post(strict, alice, (product, 2)), range(12)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 5 + [409] * 7, [r.text for r in responses]
    for refused in (r for r in responses if r.status_code == 409):
        assert_problem(refused, 409, TOO_MANY)
    assert customer_holds(strict.db, alice_id) == (5, 10)
    assert sqlite_count(strict.db, "SELECT count(*) FROM holds") == 5
    pending = "SELECT count(*) FROM orders WHERE status = 'PENDING_PAYMENT'"
    assert sqlite_count(strict.db, pending) == 5
    assert available(inventory, product) == 50 - 10


def test_a_refused_reservation_gives_the_hold_back(
    strict: Shop, inventory: httpx.Client, inventory_db: str, alice: str, alice_id: str
) -> None:
    plenty, scarce = add_product(inventory_db, 10), add_product(inventory_db, 1)
    assert post(strict, alice, (plenty, 2)).status_code == 201
    orders = strict.count("orders")

    assert_problem(post(strict, alice, (plenty, 1), (scarce, 2)), 409, "insufficient-stock")
    assert customer_holds(strict.db, alice_id) == (1, 2)
    assert sqlite_count(strict.db, "SELECT count(*) FROM holds") == 1
    assert strict.count("orders") == orders
    assert (available(inventory, plenty), available(inventory, scarce)) == (8, 1)


def test_a_scarce_product_over_its_per_customer_cap_is_a_409_and_gives_the_hold_back(
    strict: Shop, inventory: httpx.Client, inventory_db: str, alice: str, alice_id: str, bob: str
) -> None:
    # Inventory caps the units of a scarce product one customer's unpaid orders hold.
    poster = add_product(inventory_db, 3, max_held_per_customer=1)
    assert post(strict, alice, (poster, 1)).status_code == 201
    orders = strict.count("orders")

    refused = post(strict, alice, (poster, 1))
    problem = assert_problem(refused, 409, "hold-limit-reached")
    assert problem["title"] == "Hold limit reached"
    assert problem["detail"] == (
        "you already hold 1 unit of 'Test product' unpaid, and one customer may hold at most 1; "
        "pay or cancel an order holding it first"
    )
    assert (problem["product_id"], problem["limit"], problem["held"]) == (poster, 1, 1)
    # The refused order's hold was given back: her one unpaid order is all that counts.
    assert customer_holds(strict.db, alice_id) == (1, 1)
    assert sqlite_count(strict.db, "SELECT count(*) FROM holds") == 1
    assert strict.count("orders") == orders
    assert available(inventory, poster) == 2

    # Another customer is not held back by hers.
    strict.cancel_all(bob)  # whatever another test left him
    placed = post(strict, bob, (poster, 1))
    assert placed.status_code == 201, placed.text
    strict.cancel_all(bob)
    assert available(inventory, poster) == 2


def test_one_order_alone_over_a_scarce_products_cap_is_a_422_and_frees_its_key(
    strict: Shop, inventory: httpx.Client, inventory_db: str, alice: str, alice_id: str
) -> None:
    # No payment or cancellation would let it through: a 422, decided at inventory.
    plenty = add_product(inventory_db, 10)
    key_ring = add_product(inventory_db, 10, max_held_per_customer=2)
    assert post(strict, alice, (plenty, 1)).status_code == 201
    before = customer_holds(strict.db, alice_id)
    orders, keys = strict.count("orders"), strict.count("idempotency_keys")
    headers = {**bearer(alice), "Idempotency-Key": '"over-the-cap"'}

    refused = strict.http.post(
        "/orders", json=order_body((plenty, 1), (key_ring, 3)), headers=headers
    )
    problem = assert_problem(refused, 422, "over-hold-limit")
    assert problem["title"] == "Over the hold limit"
    assert problem["detail"] == (
        "one customer may hold at most 2 units of 'Test product' unpaid; this order asks for 3"
    )
    assert (problem["product_id"], problem["limit"], problem["requested"]) == (key_ring, 2, 3)
    # Nothing held at inventory, nothing stored, her limits' hold given back.
    assert (available(inventory, plenty), available(inventory, key_ring)) == (9, 10)
    assert customer_holds(strict.db, alice_id) == before
    assert strict.count("orders") == orders
    # The key was freed: the same key places the order she can have.
    assert strict.count("idempotency_keys") == keys
    placed = strict.http.post("/orders", json=order_body((key_ring, 2)), headers=headers)
    assert placed.status_code == 201, placed.text
    assert available(inventory, key_ring) == 8


def test_an_expired_order_frees_its_place(
    expiring: Shop, inventory: httpx.Client, inventory_db: str, alice: str, alice_id: str
) -> None:
    product = add_product(inventory_db, 10)
    first = post(expiring, alice, (product, 3))
    assert first.status_code == 201, first.text
    assert_problem(post(expiring, alice, (product, 1)), 409, TOO_MANY)

    order_id = first.json()["id"]
    wait_for(lambda: order_status(expiring.http, alice, order_id) == "CANCELLED", what="expiry")
    assert customer_holds(expiring.db, alice_id) == (0, 0)
    again = post(expiring, alice, (product, 1))
    assert again.status_code == 201, again.text
    assert available(inventory, product) == 9


def test_the_expiry_job_gives_back_a_hold_whose_order_was_never_stored(
    expiring: Shop, bob_id: str
) -> None:
    # What a placement leaves when the process stops after the hold, before the order.
    path = expiring.db.removeprefix("sqlite:///")
    # As SQLAlchemy writes a time to SQLite. The recent one stays younger than the payment
    # timeout for the length of the test.
    stored = "%Y-%m-%d %H:%M:%S.%f"
    old = (datetime.now(UTC) - timedelta(minutes=5)).strftime(stored)
    recent = (datetime.now(UTC) + timedelta(minutes=1)).strftime(stored)
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO holds (order_id, customer_id, units, taken_at) VALUES (?, ?, ?, ?)",
            [("ord_crashed", bob_id, 4, old), ("ord_in_flight", bob_id, 2, recent)],
        )
        connection.execute(
            "INSERT INTO customer_holds (customer_id, open_orders, open_units) VALUES (?, 2, 6)",
            (bob_id,),
        )
    # The old one is given back; the recent one may still become an order.
    wait_for(lambda: customer_holds(expiring.db, bob_id) == (1, 2), what="the stale hold")
    held = "SELECT order_id FROM holds WHERE customer_id = ?"
    with sqlite3.connect(path) as connection:
        assert connection.execute(held, (bob_id,)).fetchall() == [("ord_in_flight",)]


@pytest.mark.parametrize(
    ("topic", "status"), [(PAYMENT_SUCCEEDED, "CONFIRMED"), (PAYMENT_FAILED, "CANCELLED")]
)
def test_payment_and_decline_give_the_hold_back(
    http: httpx.Client,
    order_db: str,
    inventory_db: str,
    billing_db: str,
    kafka: KafkaBroker,
    bob: str,
    bob_id: str,
    topic: str,
    status: str,
) -> None:
    # The shared server (its consumer reads the payment events); its limits are high, but it
    # counts all the same.
    product = add_product(inventory_db, 10)
    before = customer_holds(order_db, bob_id)
    order: dict[str, Any] = place(http, bob, product, 3)
    assert customer_holds(order_db, bob_id) == (before[0] + 1, before[1] + 3)

    publish(kafka.bootstrap, topic, billed(billing_db, topic, order), key=order["id"])
    wait_for(lambda: order_status(http, bob, order["id"]) == status, what=status)
    assert customer_holds(order_db, bob_id) == before
    held = "SELECT count(*) FROM holds WHERE order_id = ?"
    assert sqlite_count(order_db, held, order["id"]) == 0
