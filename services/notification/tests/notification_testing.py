"""Helpers for the notification tests: settings, real tokens, real Kafka records, bounded waits."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    AIOKafkaProducer,
    TopicPartition,
)
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from auth_testing import claims, client_credentials, exchange, login
from billing_service import repository as billing_repository
from billing_service.models import Invoice
from billing_testing import outbox_rows
from hopkit.db import create_engine, session_factory
from hopkit.events import ORDER_CONFIRMED, Envelope, dlq
from hopkit.logs import JsonFormatter
from hopkit.outbox import OutboxRelay
from notification_service import service
from notification_service.config import Settings
from notification_service.contacts import ContactCache
from notification_service.directory import UserDirectory, directory_client, worker_endpoint
from notification_service.messages import claim_from
from notification_service.models import Base, Notification, processed_events
from notification_service.owners import Owners, owner_clients
from order_service import repository as order_repository
from order_service.models import Order, OrderItem
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

PROBLEMS = "https://hopshop.example/problems/"
GROUP = "notification"
# Tansu makes a joining member wait about half the session timeout: keep it short here.
FAST_CONSUMER: dict[str, object] = {
    "consumer_session_timeout_ms": 1000,
    "consumer_heartbeat_interval_ms": 200,
    "consumer_backoff_first": 0.05,
    "consumer_backoff_max": 0.2,
    "consumer_max_attempts": 3,
}


def make_settings(tmp: Path, issuer: str, bootstrap: str | None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "issuer": issuer,
        "database_url": f"sqlite:///{tmp / 'notification.db'}",
        "kafka_bootstrap": bootstrap,
        "worker_enabled": bootstrap is not None,
        "json_logs": False,
        "access_log": False,
        # The tests here are about other things and mint plain bearer tokens; DPoP
        # (on by default) has its own tests in test_dpop.py.
        "dpop": False,
        **FAST_CONSUMER,
        **overrides,
    }
    return Settings.model_validate(values)


# -- tokens, from the real auth service ---------------------------------------------------


@dataclass(frozen=True)
class Customer:
    user_id: str
    login_token: str  # aud=gateway: what the browser holds
    token: str  # exchanged by the gateway: aud=notification, notifications:read


def customer(auth: httpx.Client, username: str) -> Customer:
    """The real chain: the user logs in, the gateway exchanges the token for this service."""
    user_token = login(auth, username).access_token
    exchanged = exchange(auth, "gateway", user_token, "notification", "notifications:read")
    assert exchanged.status_code == 200, exchanged.text
    return Customer(claims(user_token)["sub"], user_token, exchanged.json()["access_token"])


def service_token(auth: httpx.Client, client_id: str, audience: str, scope: str) -> str:
    response = client_credentials(auth, client_id, audience, scope)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def notifications(http: httpx.Client, token: str, **params: Any) -> list[dict[str, Any]]:
    response = http.get("/notifications", headers=bearer(token), params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def about(found: list[dict[str, Any]], order_id: str) -> list[dict[str, Any]]:
    return [item for item in found if item["order_id"] == order_id]


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


def differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


# -- Kafka, as order and billing will use it ------------------------------------------------


def new_order_id() -> str:
    return f"ord_{uuid.uuid4().hex[:12]}"


def event(type_: str, subject: str | None, order_id: str, **data: Any) -> Envelope:
    producer = "billing" if type_.startswith("payment.") else "order"
    return Envelope.new(type_, producer, subject, {"order_id": order_id, **data})


async def publish(
    bootstrap: str,
    topic: str,
    value: bytes,
    *,
    key: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key, headers=headers or [])
    finally:
        await producer.stop()


async def end_offset(bootstrap: str, topic: str) -> int:
    """How many records partition 0 of ``topic`` holds (the shop's topics have one)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def committed(bootstrap: str, topic: str, group: str = GROUP) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        offset = await consumer.committed(TopicPartition(topic, 0))
        return 0 if offset is None else int(offset)
    finally:
        await consumer.stop()


async def drained(bootstrap: str, topic: str, group: str = GROUP) -> bool:
    """Has the group committed every record of ``topic``?"""
    return await committed(bootstrap, topic, group) == await end_offset(bootstrap, topic)


async def dead_letter(bootstrap: str, topic: str, event_id: str, within: float = 10.0) -> Any:
    """The record of ``<topic>.dlq`` carrying event ``event_id``; fails after ``within`` seconds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(dlq(topic), 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=200)
            for record in batch.get(tp, []):
                if event_id.encode() in (record.value or b""):
                    return record
    finally:
        await consumer.stop()
    raise AssertionError(f"no dead letter for {event_id} on {dlq(topic)} after {within}s")


async def dead_letters(bootstrap: str, topic: str, within: float = 10.0) -> bytes:
    """Every record ``<topic>.dlq`` holds now, their values concatenated."""
    tp = TopicPartition(dlq(topic), 0)
    end = await end_offset(bootstrap, tp.topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        values: list[bytes] = []
        deadline = time.monotonic() + within
        while len(values) < end:
            assert time.monotonic() < deadline, f"{tp.topic}: {len(values)} of {end} records"
            batch = await consumer.getmany(tp, timeout_ms=200)
            values += [record.value or b"" for record in batch.get(tp, [])]
        return b"".join(values)
    finally:
        await consumer.stop()


def headers_of(record: Any) -> dict[str, str]:
    return {key: value.decode() for key, value in record.headers}


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], within: float = 10.0, what: str = "it"
) -> None:
    """Poll ``check`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


# -- the database, read directly (what the API does not show) --------------------------------


async def stored(database_url: str, order_id: str) -> list[dict[str, Any]]:
    """Every notification row about ``order_id``, all columns."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(
                select(Notification.__table__).where(Notification.order_id == order_id)
            )
            return [dict(row._mapping) for row in result]
    finally:
        await engine.dispose()


async def processed(database_url: str, event_id: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            count = await connection.scalar(
                select(func.count())
                .select_from(processed_events)
                .where(processed_events.c.event_id == event_id)
            )
            return int(count or 0)
    finally:
        await engine.dispose()


#: What the worker logs when an event's owner does not confirm it.
DROPPED = "event not confirmed by its owner; nobody notified"


def dropped_lines(text: str, event_id: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines()]
    return [x for x in lines if x.get("msg") == DROPPED and x.get("event_id") == event_id]


async def assert_dropped(database_url: str, logs: str, forged: Envelope, reason: str) -> None:
    """``forged`` was dropped as unconfirmed for ``reason``: logged once, nothing stored."""
    [line] = dropped_lines(logs, forged.event_id)
    assert (line["type"], line["reason"]) == (forged.type, reason)
    assert line["level"] == "warning"
    assert await stored(database_url, str(forged.data["order_id"])) == []
    # Handled once (one log line) and not recorded: a genuine event carrying the
    # same id must still be applied (hopkit.events.NoEffect).
    assert await processed(database_url, forged.event_id) == 0


@contextlib.contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line of this process (test servers included), as the services write them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("notification"))
    root = logging.getLogger()
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)


# -- the owners: what order and billing recorded ---------------------------------------------


@dataclass(frozen=True)
class Shop:
    """The real order and billing services the worker checks events with."""

    order_url: str
    billing_url: str
    order_db: str
    billing_db: str

    @property
    def urls(self) -> dict[str, str]:
        """Settings for a notification service that asks these two."""
        return {"order_url": self.order_url, "billing_url": self.billing_url}


async def an_order(
    shop: Shop,
    customer_id: str,
    status: str = "CONFIRMED",
    *,
    reason: str | None = None,
    total_cents: int = 1250,
    currency: str = "EUR",
) -> str:
    """An order as the order service stores it, in ``status``; its id."""
    now = datetime.now(UTC)
    order = Order(
        id=new_order_id(),
        customer_id=customer_id,
        status=status,
        reason=reason,
        total_cents=total_cents,
        currency=currency,
        card_masked="424242******4242",
        created_at=now,
        updated_at=now,
    )
    item = OrderItem(
        product_id=1, sku="HOP-MUG", name="Mug", quantity=1, unit_price_cents=total_cents
    )
    engine = create_engine(shop.order_db)
    try:
        async with session_factory(engine).begin() as session:
            await order_repository.add_order(session, order, [item])
    finally:
        await engine.dispose()
    return order.id


async def a_payment(
    shop: Shop,
    customer_id: str,
    order_id: str,
    status: str = "PAID",
    *,
    amount_cents: int = 1250,
    currency: str = "EUR",
) -> str:
    """Billing's record of a charge for the order (``PAID`` or ``DECLINED``); the invoice id."""
    invoice = Invoice(
        id=str(uuid.uuid4()),
        order_id=order_id,
        customer_id=customer_id,
        status=status,
        amount_cents=amount_cents,
        currency=currency,
        decline_reason=None if status == "PAID" else "card_declined",
        provider_reference="sim_test",
        event_id=str(uuid.uuid4()),
        created_at=datetime.now(UTC),
    )
    engine = create_engine(shop.billing_db)
    try:
        async with session_factory(engine).begin() as session:
            await billing_repository.add_invoice(session, invoice)
    finally:
        await engine.dispose()
    return invoice.id


async def a_refund(shop: Shop, order_token: str, bootstrap: str, order_id: str) -> Envelope:
    """Billing gives the order's payment back, as order asks it to (its refund route,
    order's ``payments:refund`` token), and an outbox relay publishes what billing wrote:
    the ``payment.refunded`` event, returned as billing wrote it."""
    async with httpx.AsyncClient(base_url=shop.billing_url, timeout=10) as billing:
        response = await billing.post(
            f"/internal/orders/{order_id}/refund", headers=bearer(order_token)
        )
    assert response.status_code == 200, response.text
    # The shop's billing runs no worker: relay its outbox as billing's own relay would.
    engine = create_engine(shop.billing_db)
    relay = OutboxRelay(bootstrap, session_factory(engine))
    try:
        await relay.publish_pending()
    finally:
        await relay.stop()
        await engine.dispose()
    [row] = await outbox_rows(shop.billing_db, order_id)
    assert row["published_at"] is not None
    return Envelope.parse(row["payload"].encode())


# -- the worker's parts, built as app.py builds them ------------------------------------------


@dataclass(frozen=True)
class WorkerParts:
    owners: Owners
    directory: UserDirectory
    lookups: list[httpx.Request]  # every request the directory client sent, in order


@contextlib.asynccontextmanager
async def worker_parts(
    settings: Settings, cache: ContactCache | None
) -> AsyncIterator[WorkerParts]:
    """The worker's real clients for order, billing and the directory (plain bearer tokens,
    no Redis), with an event hook on the directory client counting its requests."""
    lookups: list[httpx.Request] = []

    async def count(request: httpx.Request) -> None:
        lookups.append(request)

    async with httpx.AsyncClient(timeout=5) as http:
        endpoint = worker_endpoint(settings, http)
        orders, billing = owner_clients(settings, endpoint, None)
        async with orders, billing, directory_client(settings, http, None, endpoint=endpoint) as d:
            d.event_hooks["request"].append(count)
            yield WorkerParts(Owners(orders, billing), UserDirectory(d, cache), lookups)


async def two_copies_at_once(
    tmp: Path,
    issuer: str,
    bootstrap: str,
    database_url: str,
    http: httpx.Client,
    shop: Shop,
    who: Customer,
) -> None:
    """Two copies of one true event (different ids) handled at once tell ``who`` once.

    The first copy is handled as a second consumer of the group would (during
    a rebalance, say): the worker's own service function and clients, in a
    transaction this test holds open. The copy goes through Kafka to the
    running worker (whose contact cache must be off: its directory lookup is
    the signal). Once auth logs that lookup, the worker has read "not told
    yet"; only then does the first transaction commit. The unique index must
    stop the worker's insert: one notification, the copy a no-effect (not
    recorded, not dead-lettered, its offset committed).
    """
    order_id = await an_order(shop, who.user_id, "CONFIRMED")
    first = event(ORDER_CONFIRMED, who.user_id, order_id)
    copy = event(ORDER_CONFIRMED, who.user_id, order_id)  # the same news, another event id
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01".encode()
    settings = make_settings(tmp, issuer, None, database_url=database_url, **shop.urls)

    def looked_up(text: str) -> bool:
        return any(
            entry.get("path") == f"/users/{who.user_id}" and entry.get("trace_id") == trace_id
            for entry in map(json.loads, text.splitlines())
        )

    engine = create_engine(database_url)
    try:
        with captured_logs() as logs:
            async with (
                worker_parts(settings, None) as parts,
                session_factory(engine)() as session,
            ):
                stored_first = await service.notify_about(
                    session, claim_from(first), parts.owners, parts.directory
                )
                assert stored_first is not None
                await publish(
                    bootstrap,
                    ORDER_CONFIRMED,
                    copy.to_bytes(),
                    headers=[("traceparent", traceparent)],
                )
                await eventually(lambda: looked_up(logs.getvalue()), what="the copy's lookup")
                await session.commit()
            await eventually(lambda: drained(bootstrap, ORDER_CONFIRMED), what="the copy's commit")
            await eventually(lambda: copy.event_id in logs.getvalue(), what="the copy's log line")
    finally:
        await engine.dispose()

    [row] = await stored(database_url, order_id)
    assert row["event_id"] == first.event_id
    assert await processed(database_url, copy.event_id) == 0  # no effect: unrecorded
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    [outcome] = [x for x in lines if x.get("event_id") == copy.event_id and x.get("outcome")]
    assert (outcome["outcome"], outcome["no_effect"]) == ("no-effect", "nobody notified")
    assert copy.event_id.encode() not in await dead_letters(bootstrap, ORDER_CONFIRMED)
    assert [n["id"] for n in about(notifications(http, who.token), order_id)] == [stored_first.id]
