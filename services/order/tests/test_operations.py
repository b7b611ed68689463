"""Operations: health and readiness, OpenAPI security, trace context carried into events,
and the reservation released when the order cannot be stored."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import httpx
import pytest
from hopkit.events import ORDER_PLACED
from hopkit.testing import KafkaBroker
from inventory_testing import add_product
from order_testing import available, bearer, events_for, order_body, sqlite_count

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_health_and_readiness(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok", "kafka": "ok"}


def test_openapi_declares_bearer_security_on_protected_routes(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, method in (
        ("/orders", "post"),
        ("/orders", "get"),
        ("/orders/{order_id}", "get"),
        ("/orders/{order_id}/cancel", "post"),
        ("/support/orders/{order_id}/owner", "get"),
        ("/internal/orders/{order_id}", "get"),
        ("/internal/orders/{order_id}/status", "get"),
    ):
        assert spec["paths"][path][method]["security"] == [{"HTTPBearer": []}], path
    docs = http.get("/docs")
    assert docs.status_code == 200
    # Offline workshops: Swagger UI comes from the service itself, never a CDN.
    assert "cdn." not in docs.text and "://" not in docs.text
    assert http.get("/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_the_callers_trace_reaches_the_event(
    http: httpx.Client, inventory_db: str, kafka: KafkaBroker, alice: str
) -> None:
    product = add_product(inventory_db, 3)
    headers = {
        **bearer(alice),
        "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
        "x-request-id": "req-order-1",
    }
    response = http.post("/orders", json=order_body((product, 1)), headers=headers)
    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"] == "req-order-1"
    [record] = events_for(kafka.bootstrap, ORDER_PLACED, response.json()["id"])
    record_headers = {key: value.decode() for key, value in record.headers}
    assert record_headers["x-request-id"] == "req-order-1"
    assert record_headers["traceparent"].startswith(f"00-{TRACE_ID}-")


@pytest.fixture
def failing_store(order_db: str) -> Iterator[int]:
    """A real database failure after the reservation: a trigger refusing one total."""
    total = 4243
    path = order_db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TRIGGER refuse_total BEFORE INSERT ON orders "
            f"WHEN NEW.total_cents = {total} BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
    try:
        yield total
    finally:
        with sqlite3.connect(path) as connection:
            connection.execute("DROP TRIGGER refuse_total")


def test_an_order_that_cannot_be_stored_releases_its_reservation(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    order_db: str,
    alice: str,
    failing_store: int,
) -> None:
    product = add_product(inventory_db, 5, price_cents=failing_store)
    orders_before = sqlite_count(order_db, "SELECT count(*) FROM orders")
    outbox_before = sqlite_count(order_db, "SELECT count(*) FROM outbox")
    response = http.post("/orders", json=order_body((product, 1)), headers=bearer(alice))
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "disk on fire" not in response.text
    assert available(inventory, product) == 5  # the compensation released the units
    assert sqlite_count(order_db, "SELECT count(*) FROM orders") == orders_before
    assert sqlite_count(order_db, "SELECT count(*) FROM outbox") == outbox_before
