"""The worker on a real broker, where no order service is needed to tell the outcome.

Here the order service is down (its URL is a port nobody listens on): events
the worker must refuse without asking anybody go to the DLQ at once; events
it would have to ask about wait (never dead-lettered: an outage is not bad
input), nobody is charged meanwhile, and once the order service is back the
order is charged from its answer. This billing instance has a broker of its own, so its consumer
group never meets the one of the end-to-end tests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from auth_testing import claims
from billing_service.app import create_app
from billing_service.config import DEV_WORKER_SECRET, WORKER_CLIENT_ID
from billing_service.orders import order_credentials
from billing_testing import (
    end_offset,
    eventually,
    invoices_for,
    order_placed,
    place_order,
    processed,
    publish,
    records,
    settled,
    worker_settings,
)
from hopauth import TokenEndpoint
from hopkit.events import ORDER_PLACED, PAYMENT_FAILED, PAYMENT_SUCCEEDED, Envelope, dlq
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer, free_port
from order_service.app import create_app as create_order_app
from order_testing import make_settings as make_order_settings


@pytest.fixture(scope="module")
def broker() -> Iterator[KafkaBroker]:
    with KafkaBroker() as broker:
        yield broker


@pytest.fixture(scope="module")
def lonely(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer, broker: KafkaBroker
) -> Iterator[ServerThread]:
    """Billing whose order service is down."""
    settings = worker_settings(
        tmp_path_factory.mktemp("billing-lonely"),
        issuer,
        broker.bootstrap,
        order_url=f"http://127.0.0.1:{free_port()}",
        redis_url=valkey.url,
    )
    with ServerThread(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def database_url(lonely: ServerThread) -> str:
    url: str = lonely.app.state.settings.database_url
    return url


async def dead_letters(bootstrap: str, event: Envelope) -> list[dict[str, str]]:
    return [
        {key: value.decode() for key, value in record.headers}
        for record in await records(bootstrap, dlq(ORDER_PLACED))
        if record.value == event.to_bytes()
    ]


async def nothing_emitted(bootstrap: str) -> bool:
    return (
        await end_offset(bootstrap, PAYMENT_SUCCEEDED) == 0
        and await end_offset(bootstrap, PAYMENT_FAILED) == 0
    )


def test_readyz_checks_the_broker_too(lonely: ServerThread) -> None:
    ready = httpx.get(f"{lonely.base_url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok", "kafka": "ok"}


@pytest.mark.parametrize(
    "order_id", ["../admin", "ord/1", "", "x" * 65, 42, None, ["ord-1"], {"id": "ord-1"}]
)
async def test_an_unusable_order_id_is_dead_lettered_without_asking_anybody(
    lonely: ServerThread, broker: KafkaBroker, database_url: str, order_id: object
) -> None:
    event = order_placed(order_id)
    await publish(broker.bootstrap, ORDER_PLACED, event.to_bytes())
    await settled(broker.bootstrap)
    [headers] = await dead_letters(broker.bootstrap, event)
    # "poison", at the first attempt: the order service (down) was never called.
    assert headers["x-dlq-reason"] == "poison: data.order_id is missing or not an order id"
    assert headers["x-dlq-attempts"] == "1"
    assert not await processed(database_url, event.event_id)
    assert await nothing_emitted(broker.bootstrap)


async def test_another_event_type_on_the_topic_is_dead_lettered(
    lonely: ServerThread, broker: KafkaBroker
) -> None:
    event = Envelope.new("order.shipped", "order", "alice", {"order_id": "ord-typed"})
    await publish(broker.bootstrap, ORDER_PLACED, event.to_bytes())
    await settled(broker.bootstrap)
    [headers] = await dead_letters(broker.bootstrap, event)
    assert headers["x-dlq-reason"] == "poison: type is 'order.shipped', expected 'order.placed'"


async def test_an_order_service_outage_is_waited_out_then_the_order_is_charged(
    tmp_path: Path,
    issuer: str,
    valkey: ValkeyServer,
    inventory_server: ServerThread,
    alice_orders: str,
    mug: int,
) -> None:
    # A real order service that holds the order, then goes away; billing on a broker of its
    # own (its partition waits on the outage, and no other test's event waits behind it).
    order_port = free_port()
    order_settings = make_order_settings(
        tmp_path / "order", issuer, redis_url=valkey.url, inventory_url=inventory_server.base_url
    )
    with (
        ServerThread(create_order_app(order_settings), order_port) as order_server,
        httpx.Client(base_url=order_server.base_url, timeout=15) as orders,
    ):
        order = place_order(orders, alice_orders, mug)
    # Amounts in the message are never trusted: without the order service, nothing happens.
    event = order_placed(order["id"], subject=order["customer_id"], total_cents=1, card="4242")
    retries = _Retries()
    logging.getLogger("hopkit.consumer").addHandler(retries)
    try:
        with KafkaBroker() as broker:
            settings = worker_settings(
                tmp_path / "billing",
                issuer,
                broker.bootstrap,
                order_url=f"http://127.0.0.1:{order_port}",
                redis_url=valkey.url,
            )
            with ServerThread(create_app(settings)) as billing:
                database_url: str = billing.app.state.settings.database_url
                await publish(broker.bootstrap, ORDER_PLACED, event.to_bytes(), key=b"k")
                await eventually(
                    lambda: _true(len(retries.records) > 2 * settings.worker_max_attempts),
                    what="retries well past worker_max_attempts while order is down",
                )
                assert retries.records[0].error == "OrderServiceError"  # type: ignore[attr-defined]
                assert any(r.levelname == "ERROR" for r in retries.records)  # a stuck partition
                assert await dead_letters(broker.bootstrap, event) == []
                assert not await processed(database_url, event.event_id)
                assert await invoices_for(database_url, order["id"]) == []

                # The order service is back (same database): the event is applied, once.
                with ServerThread(create_order_app(order_settings), order_port):
                    await settled(broker.bootstrap, within=15)
                assert await processed(database_url, event.event_id)
                [invoice] = await invoices_for(database_url, order["id"])
                assert invoice.amount_cents == order["total_cents"]  # order's, not the event's
                assert await end_offset(broker.bootstrap, dlq(ORDER_PLACED)) == 0
    finally:
        logging.getLogger("hopkit.consumer").removeHandler(retries)


class _Retries(logging.Handler):
    """The consumer's retry log lines (warnings, and the errors of a stuck partition)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "transient", None) is True:
            self.records.append(record)


async def _true(value: bool) -> bool:
    return value


async def test_the_worker_token_is_its_own_for_order_only(issuer: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        endpoint = TokenEndpoint(
            token_url=f"{issuer}/token",
            client_id=WORKER_CLIENT_ID,
            client_secret=DEV_WORKER_SECRET,
            http=http,
        )
        token = claims(await order_credentials(endpoint).token())
    assert token["aud"] == "order"
    assert token["scope"] == "orders:read"
    assert token["client_id"] == token["sub"] == "billing-worker"
    assert "act" not in token
    assert "sid" not in token


def test_the_consumer_reads_only_order_placed(lonely: ServerThread) -> None:
    worker = lonely.app.state.worker
    assert worker.consumer.group_id == "billing"
    assert worker.consumer.topics == (ORDER_PLACED,)
