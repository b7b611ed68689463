"""The worker on a real broker, where no order service is needed to tell the outcome.

Here the order service is down (its URL is a port nobody listens on): events
the worker must refuse without asking anybody go to the DLQ at once; events
it would have to ask about are retried, then dead-lettered, and nobody is
charged. This billing instance has a broker of its own, so its consumer
group never meets the one of the end-to-end tests.
"""

from __future__ import annotations

from collections.abc import Iterator

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
    processed,
    publish,
    records,
    settled,
    worker_settings,
)
from hopauth import TokenEndpoint
from hopkit.events import ORDER_PLACED, PAYMENT_FAILED, PAYMENT_SUCCEEDED, Envelope, dlq
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer, free_port


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


async def test_with_the_order_service_down_nobody_is_charged_and_the_event_is_kept(
    lonely: ServerThread, broker: KafkaBroker, database_url: str
) -> None:
    # Amounts in the message are never trusted: without the order service, nothing happens.
    event = order_placed("ord-while-down", subject="alice", total_cents=1, card="4242")
    await publish(broker.bootstrap, ORDER_PLACED, event.to_bytes(), key=b"ord-while-down")

    async def dead_lettered() -> bool:
        return bool(await dead_letters(broker.bootstrap, event))

    await eventually(dead_lettered, what="the event to reach the DLQ after its retries")
    [headers] = await dead_letters(broker.bootstrap, event)
    assert headers["x-dlq-reason"] == (
        "handler failed: OrderServiceError: order service unreachable: ConnectError"
    )
    assert headers["x-dlq-attempts"] == "3"
    await settled(broker.bootstrap)
    # Not recorded as processed: replayed from the DLQ later, it will be handled then.
    assert not await processed(database_url, event.event_id)
    assert await invoices_for(database_url, "ord-while-down") == []
    assert await nothing_emitted(broker.bootstrap)


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
