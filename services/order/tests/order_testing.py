"""Helpers for the order tests: settings, tokens as the gateway and billing get them,
events read from and written to the real broker, bounded waits."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from auth_testing import gateway_token
from billing_service import repository as billing_repository
from billing_service.models import Invoice
from hopkit.db import create_engine, session_factory
from hopkit.events import PAYMENT_SUCCEEDED, Envelope
from order_service.app import MIGRATIONS
from order_service.config import Settings
from order_service.models import Base
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

PROBLEMS = "https://hopshop.example/problems/"
CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"


def make_settings(tmp: Path, issuer: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "issuer": issuer,
        "database_url": f"sqlite:///{tmp / 'order.db'}",
        "json_logs": False,
        "access_log": False,
        "outbox_poll_interval": 0.2,
        "consumer_session_timeout_ms": 1000,
        "run_expiry_scheduler": False,
        # The tests here are about other things and mint plain bearer tokens; DPoP
        # (on by default) has its own tests in test_dpop.py.
        "dpop": False,
        # The shared test servers keep the customers' unpaid orders for the whole session;
        # the limits on them have their own tests (test_open_order_limits.py).
        "max_open_orders": 100_000,
        "max_open_units": 10_000_000,
        **overrides,
    }
    return Settings.model_validate(values)


def order_token(auth: httpx.Client, username: str, scope: str = "orders:read orders:write") -> str:
    """Exactly what the gateway will do: the user logs in (code + PKCE), gateway exchanges."""
    return gateway_token(auth, username, "order", scope)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def order_body(*lines: tuple[int, int], card: str = CARD) -> dict[str, Any]:
    return {
        "items": [{"product_id": product, "quantity": quantity} for product, quantity in lines],
        "card": card,
    }


def available(inventory: httpx.Client, product_id: int) -> int:
    response = inventory.get(f"/products/{product_id}")
    assert response.status_code == 200, response.text
    units: int = response.json()["available"]
    return units


def reservation_status(inventory_database_url: str, order_id: str) -> str | None:
    """What inventory itself recorded for the order's reservation (read from its database)."""
    path = inventory_database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        row = connection.execute(
            "SELECT status FROM reservations WHERE order_id = ?", (order_id,)
        ).fetchone()
    return None if row is None else str(row[0])


def invoice_status(billing_database_url: str, order_id: str) -> str | None:
    """The status of billing's invoice for the order (read from billing's database)."""
    path = billing_database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        row = connection.execute(
            "SELECT status FROM invoices WHERE order_id = ?", (order_id,)
        ).fetchone()
    return None if row is None else str(row[0])


def sqlite_count(database_url: str, sql: str, *params: object) -> int:
    path = database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        return int(connection.execute(sql, params).fetchone()[0])


def assert_problem(
    response: httpx.Response, status: int, type_: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if type_ is not None:
        assert body["type"] == (type_ if ":" in type_ else PROBLEMS + type_), body
    return body


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "the condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def order_status(http: httpx.Client, token: str, order_id: str) -> str:
    response = http.get(f"/orders/{order_id}", headers=bearer(token))
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


# -- Kafka ------------------------------------------------------------------------------


def run(coroutine: Awaitable[Any]) -> Any:
    """Run a coroutine from a sync test, on a loop of its own."""

    async def wrapper() -> Any:
        return await coroutine

    return asyncio.run(wrapper())


async def _records(bootstrap: str, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        await consumer.seek_to_beginning(tp)
        records: list[Any] = []
        deadline = time.monotonic() + 10
        while len(records) < end and time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=200)
            records.extend(batch.get(tp, []))
        return records
    finally:
        await consumer.stop()


def records_for(bootstrap: str, topic: str, order_id: str) -> list[Any]:
    """Every record of ``topic`` (one partition) whose key is ``order_id``."""
    return [r for r in run(_records(bootstrap, topic)) if r.key == order_id.encode()]


def events_for(
    bootstrap: str, topic: str, order_id: str, expected: int = 1, timeout: float = 10.0
) -> list[Any]:
    """Wait until ``topic`` holds ``expected`` records for the order; return them all."""

    def enough() -> list[Any] | None:
        found = records_for(bootstrap, topic, order_id)
        return found if len(found) >= expected else None

    found: list[Any] = wait_for(enough, timeout, f"{expected} {topic} event(s) for {order_id}")
    return found


def publish(bootstrap: str, topic: str, envelope: Envelope, key: str | None = None) -> None:
    """Publish as billing would: the envelope's JSON, keyed by the order id, acks=all."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(
                topic, value=envelope.to_bytes(), key=key.encode() if key else None
            )
        finally:
            await producer.stop()

    run(send())


def differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


# -- orders and their payments -------------------------------------------------------------


def place(http: httpx.Client, token: str, product: int, quantity: int = 1) -> dict[str, Any]:
    response = http.post("/orders", json=order_body((product, quantity)), headers=bearer(token))
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


def payment(topic: str, order: dict[str, object], **extra: object) -> Envelope:
    """A payment event about ``order`` as billing writes it (billing may not agree it happened)."""
    data = {
        "order_id": order["id"],
        "invoice_id": str(uuid.uuid4()),
        "amount_cents": order["total_cents"],
        "currency": order["currency"],
        **extra,
    }
    return Envelope.new(topic, "billing", str(order["customer_id"]), data)


def billed(billing_db: str, topic: str, order: dict[str, Any], **extra: object) -> Envelope:
    """Billing's record of the payment, and the event billing emits for it."""
    status = "PAID" if topic == PAYMENT_SUCCEEDED else "DECLINED"
    invoice_id = record_payment(billing_db, order, status=status)
    return payment(topic, order, invoice_id=invoice_id, **extra)


def record_payment(
    billing_database_url: str,
    order: dict[str, Any],
    *,
    status: str = "PAID",
    amount_cents: int | None = None,
) -> str:
    """Billing's invoice for ``order``, written with billing's own repository; its id.

    What billing's worker stores when it charges: the record a payment event
    about the order is checked against. ``amount_cents`` defaults to the order's total.
    """
    invoice = Invoice(
        id=str(uuid.uuid4()),
        order_id=str(order["id"]),
        customer_id=str(order["customer_id"]),
        status=status,
        amount_cents=int(order["total_cents"]) if amount_cents is None else amount_cents,
        currency=str(order["currency"]),
        decline_reason=None if status == "PAID" else "card_declined",
        provider_reference="sim_test",
        event_id=str(uuid.uuid4()),
        created_at=datetime.now(UTC),
    )

    async def add() -> None:
        engine = create_engine(billing_database_url)
        try:
            async with session_factory(engine).begin() as session:
                await billing_repository.add_invoice(session, invoice)
        finally:
            await engine.dispose()

    run(add())
    return invoice.id


# -- limits on unpaid orders -------------------------------------------------------------


def customer_holds(database_url: str, customer_id: str) -> tuple[int, int]:
    """The customer's (open orders, open units) as the limit check sees them (SQLite)."""
    path = database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        row = connection.execute(
            "SELECT open_orders, open_units FROM customer_holds WHERE customer_id = ?",
            (customer_id,),
        ).fetchone()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


async def migrate(engine: AsyncEngine, revision: str) -> None:
    """``alembic upgrade <revision>`` on the engine's database."""

    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", MIGRATIONS)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def check_holds_backfill(engine: AsyncEngine) -> None:
    """Orders stored before the holds existed: after the upgrade, their totals are right.

    The engine's database must be empty. alice has two unpaid orders (3 + 2 and
    4 units) and a paid one, bob one cancelled: only alice's unpaid ones count.
    """
    await migrate(engine, "0001")
    now = datetime.now(UTC)
    orders = [
        ("ord_a1", "alice", "PENDING_PAYMENT", None, [(1, 3), (2, 2)]),
        ("ord_a2", "alice", "PENDING_PAYMENT", None, [(1, 4)]),
        ("ord_a3", "alice", "CONFIRMED", None, [(1, 9)]),
        ("ord_b1", "bob", "CANCELLED", "expired", [(2, 7)]),
    ]
    async with engine.begin() as connection:
        for order_id, customer, status, reason, lines in orders:
            await connection.execute(
                text(
                    "INSERT INTO orders (id, customer_id, status, reason, total_cents, currency,"
                    " card_masked, created_at, updated_at) VALUES (:id, :customer, :status,"
                    " :reason, 100, 'EUR', '424242******4242', :now, :now)"
                ),
                {
                    "id": order_id,
                    "customer": customer,
                    "status": status,
                    "reason": reason,
                    "now": now,
                },
            )
            for product, quantity in lines:
                await connection.execute(
                    text(
                        "INSERT INTO order_items (order_id, product_id, sku, name, quantity,"
                        " unit_price_cents) VALUES (:id, :product, 'SKU', 'Name', :quantity, 10)"
                    ),
                    {"id": order_id, "product": product, "quantity": quantity},
                )
    await migrate(engine, "head")
    async with engine.connect() as connection:
        totals = (
            await connection.execute(
                text("SELECT customer_id, open_orders, open_units FROM customer_holds")
            )
        ).all()
        holds = (
            await connection.execute(text("SELECT order_id, units FROM holds ORDER BY order_id"))
        ).all()
    assert [tuple(row) for row in totals] == [("alice", 2, 9)]
    assert [tuple(row) for row in holds] == [("ord_a1", 5), ("ord_a2", 4)]
