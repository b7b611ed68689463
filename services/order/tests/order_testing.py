"""Helpers for the order tests: settings, tokens as the gateway and billing get them,
events read from and written to the real broker, bounded waits."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from auth_testing import client_credentials, exchange, login
from hopkit.events import Envelope
from order_service.config import Settings
from order_service.models import Base
from sqlalchemy.engine import Connection

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
        **overrides,
    }
    return Settings.model_validate(values)


def order_token(auth: httpx.Client, username: str, scope: str = "orders:read orders:write") -> str:
    """Exactly what the gateway will do: the user logs in (code + PKCE), gateway exchanges."""
    user = login(auth, username).access_token
    response = exchange(auth, "gateway", user, "order", scope)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def service_token(auth: httpx.Client, client_id: str, audience: str, scope: str) -> str:
    response = client_credentials(auth, client_id, audience, scope)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


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
