"""The public catalogue, and one trace id from the edge to the service behind it."""

from __future__ import annotations

import re

import httpx
from gateway_testing import TRACE_ID, TRACEPARENT, access_lines
from shop_testing import Shop


def test_products_come_from_inventory_without_a_token(http: httpx.Client, shop: Shop) -> None:
    response = http.get("/api/products")
    assert response.status_code == 200, response.text
    products = response.json()
    assert products, "the demo catalogue is seeded"
    assert set(products[0]) == {
        "id",
        "sku",
        "name",
        "price_cents",
        "currency",
        "available",
        "max_held_per_customer",
    }
    # Scarce products tell the customer their cap ("1 per customer").
    assert {p["sku"]: p["max_held_per_customer"] for p in products}["HOP-LAST"] == 1
    direct = httpx.get(f"{shop.inventory.base_url}/products").json()
    assert products == direct


def test_an_incoming_traceparent_reaches_inventory(http: httpx.Client) -> None:
    with access_lines() as lines:
        response = http.get(
            "/api/products", headers={"traceparent": TRACEPARENT, "x-request-id": "req-trace-1"}
        )
        lines.wait_for("/api/products", "/products")
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "req-trace-1"
    [edge] = lines.requests("/api/products")
    [behind] = lines.requests("/products")
    assert edge["trace_id"] == behind["trace_id"] == TRACE_ID
    assert edge["request_id"] == behind["request_id"] == "req-trace-1"


def test_the_edge_starts_a_trace_when_none_comes_in(http: httpx.Client) -> None:
    with access_lines() as lines:
        response = http.get("/api/products")
        lines.wait_for("/api/products", "/products")
    assert response.status_code == 200, response.text
    [edge] = lines.requests("/api/products")
    [behind] = lines.requests("/products")
    assert re.fullmatch(r"[0-9a-f]{32}", edge["trace_id"])
    assert behind["trace_id"] == edge["trace_id"]
    assert behind["request_id"] == edge["request_id"] == response.headers["x-request-id"]


def test_a_malformed_traceparent_is_replaced_not_trusted(http: httpx.Client) -> None:
    with access_lines() as lines:
        response = http.get("/api/products", headers={"traceparent": "00-zz-bad-01"})
        lines.wait_for("/api/products", "/products")
    assert response.status_code == 200, response.text
    [edge] = lines.requests("/api/products")
    [behind] = lines.requests("/products")
    assert re.fullmatch(r"[0-9a-f]{32}", edge["trace_id"])
    assert behind["trace_id"] == edge["trace_id"]
