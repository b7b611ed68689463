"""Helpers for the billing tests: settings, tokens, invoices and events, bounded waits."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from auth_testing import claims, gateway_token
from billing_service import repository
from billing_service.config import CONSUMER_GROUP, Settings
from billing_service.models import Base, Invoice, outbox, processed_events
from hopkit.db import create_engine, session_factory
from hopkit.events import ORDER_PLACED, Envelope
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

PROBLEMS = "https://hopshop.example/problems/"
T = TypeVar("T")

# Consumer-group timings for tests: Tansu makes a joining member wait about half the
# session timeout, so short sessions keep each billing start-up under a second.
FAST_GROUP: dict[str, object] = {
    "kafka_session_timeout_ms": 1000,
    "kafka_heartbeat_interval_ms": 200,
}


def make_settings(tmp: Path, issuer: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "issuer": issuer,
        "database_url": f"sqlite:///{tmp / 'billing.db'}",
        "json_logs": False,
        "access_log": False,
        # The tests here are about other things and mint plain bearer tokens; DPoP
        # (on by default) has its own tests in test_dpop.py.
        "dpop": False,
        **overrides,
    }
    return Settings.model_validate(values)


def worker_settings(
    tmp: Path, issuer: str, bootstrap: str, order_url: str, **overrides: object
) -> Settings:
    """Billing with its worker on, retrying fast so a failing event settles within a second."""
    values: dict[str, object] = {
        "kafka_bootstrap": bootstrap,
        "order_url": order_url,
        "worker": True,
        "worker_max_attempts": 3,
        "worker_backoff_first": 0.05,
        "worker_backoff_max": 0.2,
        "outbox_poll_interval": 0.2,
        **FAST_GROUP,
        **overrides,
    }
    return make_settings(tmp, issuer, **values)


# -- tokens -----------------------------------------------------------------------------


def invoice_token(auth: httpx.Client, username: str) -> str:
    """The real chain: the user logs in, the gateway exchanges the token for billing."""
    return gateway_token(auth, username, "billing", "billing:read")


def subject_of(token: str) -> str:
    sub: str = claims(token)["sub"]
    return sub


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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


# -- the database, through the service's own code ---------------------------------------


def run_async(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run on a loop of its own (in a worker thread), so sync and async tests can both call it."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work()).result()


def add_invoice(
    database_url: str,
    customer_id: str,
    *,
    status: str = "PAID",
    amount_cents: int = 1290,
    order_id: str | None = None,
) -> Invoice:
    """An invoice written with the service's repository, as the worker would write it."""
    invoice = Invoice(
        id=str(uuid.uuid4()),
        order_id=order_id or f"ord-{uuid.uuid4().hex[:12]}",
        customer_id=customer_id,
        status=status,
        amount_cents=amount_cents,
        currency="EUR",
        decline_reason=None if status == "PAID" else "card_declined",
        provider_reference="sim_test",
        event_id=str(uuid.uuid4()),
        created_at=datetime.now(UTC),
    )

    async def add() -> Invoice:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine).begin() as session:
                return await repository.add_invoice(session, invoice)
        finally:
            await engine.dispose()

    return run_async(add)


async def invoices_for(database_url: str, order_id: str) -> list[Invoice]:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.scalars(select(Invoice).where(Invoice.order_id == order_id))
            return list(rows.all())
    finally:
        await engine.dispose()


async def outbox_rows(database_url: str, order_id: str) -> list[dict[str, Any]]:
    """Every outbox row billing wrote about ``order_id`` (its key), oldest first."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(
                select(outbox).where(outbox.c.key == order_id).order_by(outbox.c.id)
            )
            return [dict(row._mapping) for row in result]
    finally:
        await engine.dispose()


async def processed(database_url: str, event_id: str) -> bool:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            found = await session.scalar(
                select(func.count())
                .select_from(processed_events)
                .where(
                    processed_events.c.event_id == event_id,
                    processed_events.c.consumer_group == CONSUMER_GROUP,
                )
            )
            return bool(found)
    finally:
        await engine.dispose()


def differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


# -- Kafka ------------------------------------------------------------------------------


def order_placed(order_id: Any, subject: str | None = "someone", **data: Any) -> Envelope:
    return Envelope.new(ORDER_PLACED, "order", subject, {"order_id": order_id, **data})


async def publish(bootstrap: str, topic: str, value: bytes, *, key: bytes | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


async def records(bootstrap: str, topic: str) -> list[Any]:
    """Every record partition 0 of ``topic`` holds now (no consumer group involved)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        found: list[Any] = []
        deadline = time.monotonic() + 10
        while len(found) < end and time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=200)
            found.extend(batch.get(tp, []))
        assert len(found) >= end, f"{topic}: read {len(found)} of {end} records"
        return found
    finally:
        await consumer.stop()


async def events_for(bootstrap: str, topic: str, order_id: str) -> list[Envelope]:
    return [
        envelope
        for envelope in (Envelope.parse(record.value) for record in await records(bootstrap, topic))
        if envelope.data.get("order_id") == order_id
    ]


async def committed(bootstrap: str, topic: str, group: str = CONSUMER_GROUP) -> int:
    """The group's committed offset on partition 0 of ``topic`` (0 when none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        offset = await consumer.committed(TopicPartition(topic, 0))
        return 0 if offset is None else int(offset)
    finally:
        await consumer.stop()


async def end_offset(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 10.0, what: str = "the condition"
) -> None:
    """Poll ``check`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


async def settled(bootstrap: str, topic: str = ORDER_PLACED, within: float = 10.0) -> None:
    """Wait until billing has committed every record now on ``topic``: all of them handled."""
    target = await end_offset(bootstrap, topic)

    async def caught_up() -> bool:
        return await committed(bootstrap, topic) >= target

    await eventually(caught_up, within, f"billing to commit {topic} up to offset {target}")


# -- the order service ------------------------------------------------------------------

CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"


def order_token(auth: httpx.Client, username: str) -> str:
    """What the gateway does for a customer's order: exchange the login token for order."""
    return gateway_token(auth, username, "order", "orders:read orders:write")


def product_id(inventory: httpx.Client, sku: str) -> int:
    products = inventory.get("/products").json()
    found: int = next(product["id"] for product in products if product["sku"] == sku)
    return found


def place_order(
    orders: httpx.Client,
    token: str,
    product: int,
    quantity: int = 1,
    *,
    card: str = CARD,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = orders.post(
        "/orders",
        json={"items": [{"product_id": product, "quantity": quantity}], "card": card},
        headers={**bearer(token), **(headers or {})},
    )
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    assert order["status"] == "PENDING_PAYMENT"
    return order
