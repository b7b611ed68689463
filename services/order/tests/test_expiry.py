"""The expiry job: unpaid orders are cancelled after the payment timeout, as order-scheduler."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hopkit.events import ORDER_CANCELLED, Envelope
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer
from inventory_testing import add_product
from order_service.app import create_app
from order_testing import (
    available,
    bearer,
    events_for,
    make_settings,
    order_body,
    order_status,
    reservation_status,
    wait_for,
)


@pytest.fixture(scope="module")
def hasty(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: str,
    valkey: ValkeyServer,
    kafka: KafkaBroker,
    inventory_server: ServerThread,
) -> Iterator[httpx.Client]:
    """An order service of its own (own database) whose orders expire after three seconds."""
    settings = make_settings(
        Path(tmp_path_factory.mktemp("order-expiry")),
        issuer,
        redis_url=valkey.url,
        kafka_bootstrap=kafka.bootstrap,
        inventory_url=inventory_server.base_url,
        run_payment_consumer=False,  # the main test server's consumer owns group "order"
        run_expiry_scheduler=True,
        payment_timeout=3.0,
        expiry_interval=0.2,
    )
    with (
        ServerThread(create_app(settings)) as server,
        httpx.Client(base_url=server.base_url, timeout=15) as client,
    ):
        yield client


def test_an_unpaid_order_expires_and_its_stock_is_released_by_the_scheduler(
    hasty: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    kafka: KafkaBroker,
    alice: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    product = add_product(inventory_db, 4)
    with caplog.at_level(logging.INFO):
        placed = hasty.post("/orders", json=order_body((product, 3)), headers=bearer(alice))
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]
        assert available(inventory, product) == 1
        # Still within the timeout: untouched.
        assert order_status(hasty, alice, order_id) == "PENDING_PAYMENT"

        wait_for(
            lambda: order_status(hasty, alice, order_id) == "CANCELLED",
            timeout=10,
            what="expiry",
        )
    body = hasty.get(f"/orders/{order_id}", headers=bearer(alice)).json()
    assert body["reason"] == "expired"
    assert available(inventory, product) == 4
    assert reservation_status(inventory_db, order_id) == "RELEASED"
    [record] = events_for(kafka.bootstrap, ORDER_CANCELLED, order_id)
    assert Envelope.parse(record.value).data == {"order_id": order_id, "reason": "expired"}

    # Inventory saw the release made by order-scheduler's own token: no user, no act chain.
    [release] = [
        r
        for r in caplog.records
        if getattr(r, "action", None) == "release" and getattr(r, "order_id", None) == order_id
    ]
    assert release.client_id == "order-scheduler"  # type: ignore[attr-defined]
    assert release.sub == "order-scheduler"  # type: ignore[attr-defined]
    assert release.act == []  # type: ignore[attr-defined]
