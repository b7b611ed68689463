"""Idempotency-Key on POST /orders: a repeated request places nothing new.

draft-ietf-httpapi-idempotency-key-header-07: the same key and request get the
order the first one placed; another request under the key is a 422; a repeat
while the first is still placing is a 409. Keys are per customer. Checked
against the real inventory (reservations, stock), and order's own database
(orders, holds, outbox rows).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hopkit.db import create_engine, session_factory
from inventory_testing import add_product
from order_service import cards, idempotency
from order_service.inventory import Line
from order_testing import (
    CARD,
    assert_problem,
    available,
    bearer,
    order_body,
    run,
    sqlite_count,
)

OTHER_CARD = "5555555555554444"
# As SQLAlchemy writes a time to SQLite.
STORED = "%Y-%m-%d %H:%M:%S.%f"


def new_key() -> str:
    return str(uuid.uuid4())


def post(
    http: httpx.Client,
    token: str,
    key: str | None,
    *lines: tuple[int, int],
    card: str = CARD,
    quoted: bool = True,
) -> httpx.Response:
    headers = bearer(token)
    if key is not None:
        headers["Idempotency-Key"] = f'"{key}"' if quoted else key
    return http.post("/orders", json=order_body(*lines, card=card), headers=headers)


class Counts:
    """What placing leaves behind for one product: at inventory and in order's database."""

    def __init__(self, order_db: str, inventory_db: str, product: int) -> None:
        self.order_db, self.inventory_db, self.product = order_db, inventory_db, product

    def orders(self) -> list[str]:
        path = self.order_db.removeprefix("sqlite:///")
        with sqlite3.connect(path) as connection:
            rows = connection.execute(
                "SELECT order_id FROM order_items WHERE product_id = ?", (self.product,)
            ).fetchall()
        return [str(row[0]) for row in rows]

    def reservations(self) -> int:
        return sqlite_count(
            self.inventory_db,
            "SELECT count(*) FROM reservation_items WHERE product_id = ?",
            self.product,
        )

    def outbox(self, order_id: str) -> int:
        return sqlite_count(self.order_db, "SELECT count(*) FROM outbox WHERE key = ?", order_id)

    def holds(self, order_id: str) -> int:
        return sqlite_count(
            self.order_db, "SELECT count(*) FROM holds WHERE order_id = ?", order_id
        )


@pytest.fixture
def counts(order_db: str, inventory_db: str) -> Callable[[int], Counts]:
    def make(product: int) -> Counts:
        return Counts(order_db, inventory_db, product)

    return make


def key_rows(order_db: str, customer_id: str, key: str) -> list[tuple[Any, ...]]:
    path = order_db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT * FROM idempotency_keys WHERE customer_id = ? AND idempotency_key = ?",
            (customer_id, key),
        ).fetchall()


def test_a_repeat_gets_the_same_order_and_nothing_is_placed_twice(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    counts: Callable[[int], Counts],
    alice: str,
) -> None:
    product = add_product(inventory_db, 10)
    key = new_key()
    first = post(http, alice, key, (product, 2))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    order = first.json()

    again = post(http, alice, key, (product, 2))
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == order
    # The same key sent bare is the same key.
    bare = post(http, alice, key, (product, 2), quoted=False)
    assert (bare.status_code, bare.json()["id"]) == (201, order["id"]), bare.text

    placed = counts(product)
    assert placed.orders() == [order["id"]]
    assert placed.reservations() == 1
    assert available(inventory, product) == 8
    assert placed.outbox(order["id"]) == 1
    assert placed.holds(order["id"]) == 1


def test_without_a_key_every_request_is_a_new_order(
    http: httpx.Client, inventory_db: str, counts: Callable[[int], Counts], alice: str
) -> None:
    product = add_product(inventory_db, 10)
    ids = {post(http, alice, None, (product, 1)).json()["id"] for _ in range(2)}
    assert len(ids) == 2
    assert sorted(counts(product).orders()) == sorted(ids)


def test_the_same_key_for_another_order_is_a_422(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    counts: Callable[[int], Counts],
    alice: str,
) -> None:
    product, other = add_product(inventory_db, 10), add_product(inventory_db, 10)
    key = new_key()
    assert post(http, alice, key, (product, 1)).status_code == 201

    for refused in (
        post(http, alice, key, (product, 2)),
        post(http, alice, key, (other, 1)),
        post(http, alice, key, (product, 1), card=OTHER_CARD),
    ):
        problem = assert_problem(refused, 422, "idempotency-key-reused")
        assert problem["title"] == "Idempotency-Key already used"
        assert problem["header"] == "Idempotency-Key"
    assert len(counts(product).orders()) == 1
    assert counts(other).orders() == []
    assert (available(inventory, product), available(inventory, other)) == (9, 10)


def test_the_same_lines_in_another_order_are_the_same_request(
    http: httpx.Client, inventory_db: str, alice: str
) -> None:
    mug, tee = add_product(inventory_db, 10), add_product(inventory_db, 10)
    key = new_key()
    first = post(http, alice, key, (mug, 1), (tee, 2))
    again = post(http, alice, key, (tee, 1), (mug, 1), (tee, 1))
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json()["id"] == first.json()["id"]


def test_keys_are_per_customer(
    http: httpx.Client,
    inventory_db: str,
    counts: Callable[[int], Counts],
    alice: str,
    bob: str,
    bob_id: str,
) -> None:
    product = add_product(inventory_db, 10)
    key = new_key()
    alices = post(http, alice, key, (product, 1))
    bobs = post(http, bob, key, (product, 1))
    assert (alices.status_code, bobs.status_code) == (201, 201), bobs.text
    assert bobs.json()["id"] != alices.json()["id"]
    assert bobs.json()["customer_id"] == bob_id
    assert "idempotent-replayed" not in bobs.headers
    # And each gets their own back.
    assert post(http, bob, key, (product, 1)).json()["id"] == bobs.json()["id"]
    assert post(http, alice, key, (product, 1)).json()["id"] == alices.json()["id"]
    assert len(counts(product).orders()) == 2


def test_concurrent_requests_with_one_key_place_one_order(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    order_db: str,
    counts: Callable[[int], Counts],
    alice: str,
    alice_id: str,
) -> None:
    product = add_product(inventory_db, 50)
    key = new_key()
    holds = "SELECT count(*) FROM holds WHERE customer_id = ?"
    held_before = sqlite_count(order_db, holds, alice_id)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: post(http, alice, key, (product, 3)), range(8)))

    placed = [r for r in responses if r.status_code == 201]
    assert placed, [r.text for r in responses]
    assert len({r.json()["id"] for r in placed}) == 1
    for refused in (r for r in responses if r.status_code != 201):
        assert_problem(refused, 409, "idempotency-key-in-flight")
    [order_id] = counts(product).orders()
    assert order_id == placed[0].json()["id"]
    assert counts(product).reservations() == 1
    assert available(inventory, product) == 47
    assert counts(product).outbox(order_id) == 1
    assert sqlite_count(order_db, holds, alice_id) == held_before + 1
    # Once it is stored, the key gets it.
    later = post(http, alice, key, (product, 3))
    assert (later.status_code, later.json()["id"]) == (201, order_id)


def test_a_repeat_while_the_first_is_in_flight_is_a_409(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    order_db: str,
    alice: str,
    alice_id: str,
) -> None:
    # What the first request has done while it waits for inventory: claimed the key, no order.
    product = add_product(inventory_db, 10)
    key = new_key()
    fingerprint = idempotency.fingerprint([Line(product, 1)], cards.mask(CARD))
    path = order_db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
            (alice_id, key, fingerprint, f"ord_{uuid.uuid4().hex}", _stored(datetime.now(UTC))),
        )

    problem = assert_problem(post(http, alice, key, (product, 1)), 409, "idempotency-key-in-flight")
    assert problem["title"] == "Order still being placed"
    # Another request under the key is refused as such even now.
    assert_problem(post(http, alice, key, (product, 2)), 422, "idempotency-key-reused")
    assert available(inventory, product) == 10


def test_a_failed_placement_frees_its_key(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    order_db: str,
    alice: str,
    alice_id: str,
) -> None:
    product = add_product(inventory_db, 1)
    key = new_key()
    assert_problem(post(http, alice, key, (product, 2)), 409, "insufficient-stock")
    assert key_rows(order_db, alice_id, key) == []
    # The same again fails the same way (not "in flight"), and corrected it goes through.
    assert_problem(post(http, alice, key, (product, 2)), 409, "insufficient-stock")
    corrected = post(http, alice, key, (product, 1))
    assert corrected.status_code == 201, corrected.text
    assert "idempotent-replayed" not in corrected.headers
    assert available(inventory, product) == 0
    assert post(http, alice, key, (product, 1)).json()["id"] == corrected.json()["id"]


def test_an_unknown_product_frees_its_key_too(
    http: httpx.Client, order_db: str, alice: str, alice_id: str
) -> None:
    key = new_key()
    assert_problem(post(http, alice, key, (2**31 - 1, 1)), 422, "unknown-product")
    assert key_rows(order_db, alice_id, key) == []


def test_a_key_past_its_retention_may_place_a_new_order(
    http: httpx.Client, inventory_db: str, order_db: str, alice: str, alice_id: str
) -> None:
    product = add_product(inventory_db, 10)
    key = new_key()
    first = post(http, alice, key, (product, 1)).json()
    path = order_db.removeprefix("sqlite:///")
    expired = datetime.now(UTC) - idempotency.RETENTION - timedelta(minutes=1)
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE idempotency_keys SET created_at = ? WHERE idempotency_key = ?",
            (_stored(expired), key),
        )
    # Another request under it is no longer "reused": a new order, the key now its own.
    second = post(http, alice, key, (product, 2))
    assert second.status_code == 201, second.text
    assert second.json()["id"] != first["id"]
    assert post(http, alice, key, (product, 2)).json()["id"] == second.json()["id"]


def test_the_expiry_job_forgets_old_keys_and_keys_whose_order_never_came(
    http: httpx.Client, inventory_db: str, order_db: str, alice: str
) -> None:
    product = add_product(inventory_db, 10)
    stored_order = post(http, alice, new_key(), (product, 1)).json()["id"]
    customer = f"sweep-{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    rows = {
        "old": (stored_order, now - idempotency.RETENTION - timedelta(minutes=1)),
        "crashed": (f"ord_{uuid.uuid4().hex}", now - timedelta(minutes=5)),
        "in-flight": (f"ord_{uuid.uuid4().hex}", now),
        "done": (stored_order, now - timedelta(minutes=5)),
    }
    path = order_db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
            [(customer, k, "0" * 64, o, _stored(t)) for k, (o, t) in rows.items()],
        )

    async def sweep() -> int:
        engine = create_engine(order_db)
        try:
            async with session_factory(engine).begin() as session:
                return await idempotency.forget_old(session, timedelta(minutes=1))
        finally:
            await engine.dispose()

    assert run(sweep()) >= 2
    with sqlite3.connect(path) as connection:
        left = connection.execute(
            "SELECT idempotency_key FROM idempotency_keys WHERE customer_id = ?", (customer,)
        ).fetchall()
    assert sorted(row[0] for row in left) == ["done", "in-flight"]


@pytest.mark.parametrize(
    "value", ['"two words"', '"unterminated', '"k";a=1', "a,b", '"' + "k" * 256 + '"']
)
def test_a_malformed_key_is_a_400_and_nothing_is_placed(
    http: httpx.Client, inventory: httpx.Client, inventory_db: str, alice: str, value: str
) -> None:
    product = add_product(inventory_db, 10)
    headers = {**bearer(alice), "Idempotency-Key": value}
    response = http.post("/orders", json=order_body((product, 1)), headers=headers)
    problem = assert_problem(response, 400, "invalid-idempotency-key")
    assert problem["header"] == "Idempotency-Key"
    assert available(inventory, product) == 10


def test_neither_the_card_nor_its_hash_is_kept_or_logged(
    http: httpx.Client,
    inventory_db: str,
    order_db: str,
    alice: str,
    alice_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    product = add_product(inventory_db, 10)
    key = new_key()
    with caplog.at_level(logging.DEBUG):
        assert post(http, alice, key, (product, 1)).status_code == 201
        assert post(http, alice, key, (product, 1)).status_code == 201
        assert post(http, alice, key, (product, 2)).status_code == 422
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert CARD not in logged
    # The key is not logged either, nor a hash of it (a client may put anything there).
    # (At INFO and above, as the services log: hopkit keeps the SQLite driver's DEBUG
    # lines, which show every statement's parameters, out of a service's logs.)
    info = " ".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.levelno >= logging.INFO
    )
    assert key not in info
    assert hashlib.sha256(key.encode()).hexdigest()[:16] not in info
    [row] = key_rows(order_db, alice_id, key)
    kept = " ".join(str(value) for value in row)
    assert CARD not in kept
    assert hashlib.sha256(CARD.encode()).hexdigest() not in kept
    # The fingerprint is made of what the order keeps anyway: the masked card.
    assert row[2] == idempotency.fingerprint([Line(product, 1)], cards.mask(CARD))


def _stored(moment: datetime) -> str:
    return moment.strftime(STORED)
