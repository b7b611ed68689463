"""Health, readiness, the OpenAPI document, request ids and the audit log line."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import httpx
import pytest
from hopkit.logs import JsonFormatter
from hopkit.testing import ServerThread, ValkeyServer
from inventory_service.app import create_app
from inventory_service.seed import DEMO_PRODUCTS
from inventory_testing import add_product, bearer, make_settings, reservation


def test_healthz_and_readyz(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_readyz_reports_an_unreachable_redis(tmp_path: Path, issuer: str) -> None:
    dead_redis = "redis://127.0.0.1:9/0"  # discard port: nothing answers
    settings = make_settings(tmp_path, issuer, redis_url=dead_redis, seed_demo_products=False)
    with (
        ServerThread(create_app(settings)) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "ok", "redis": "unreachable"}
        assert client.get("/products").json() == []  # not seeded when told not to


def test_seed_stock_gives_each_new_demo_product_that_many_units(
    tmp_path: Path, issuer: str, valkey: ValkeyServer
) -> None:
    settings = make_settings(tmp_path, issuer, redis_url=valkey.url, seed_stock=100_000)
    with (
        ServerThread(create_app(settings)) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        catalogue = client.get("/products").json()
    assert {p["sku"] for p in catalogue} == {p.sku for p in DEMO_PRODUCTS}
    assert all(p["available"] == 100_000 for p in catalogue)
    with pytest.raises(ValueError):  # pydantic's ValidationError: no empty shop
        make_settings(tmp_path, issuer, seed_stock=0)


def test_openapi_documents_bearer_auth_on_the_protected_routes_only(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["HTTPBearer"]
    assert scheme == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": scheme["description"],
    }
    paths = spec["paths"]
    for path in (
        "/reservations",
        "/reservations/{order_id}/release",
        "/reservations/{order_id}/commit",
    ):
        operation = paths[path]["post"]
        assert operation["security"] == [{"HTTPBearer": []}], path
        assert {"401", "403", "422"} <= set(operation["responses"]), path
    assert "security" not in paths["/products"]["get"]
    assert "security" not in paths["/products/{product_id}"]["get"]
    docs = http.get("/docs")
    assert docs.status_code == 200
    # Offline workshops: Swagger UI comes from the service itself, never a CDN.
    assert "cdn." not in docs.text and "://" not in docs.text
    assert http.get("/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_request_id_is_echoed(http: httpx.Client) -> None:
    response = http.get("/products", headers={"x-request-id": "req-42"})
    assert response.headers["x-request-id"] == "req-42"


def test_the_log_says_who_reserved_and_never_holds_the_token(
    http: httpx.Client, database_url: str, reserver: str
) -> None:
    product = add_product(database_url, 2)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("inventory"))
    root = logging.getLogger()
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        response = http.post(
            "/reservations",
            json=reservation("log-1", (product, 1)),
            headers={
                **bearer(reserver),
                "x-request-id": "req-log-1",
                "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
            },
        )
        refused = http.post(
            "/reservations", json=reservation("log-2", (product, 1)), headers=bearer("e30.e30.x")
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)
    assert response.status_code == 201, response.text
    assert refused.status_code == 401
    text = stream.getvalue()
    assert reserver not in text
    assert "e30.e30.x" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    (line,) = [entry for entry in lines if entry.get("order_id") == "log-1"]
    assert line["service"] == "inventory"
    assert line["request_id"] == "req-log-1"
    assert line["trace_id"] == trace_id
    assert line["action"] == "reserve"
    assert line["status"] == 201
    assert line["client_id"] == "order"
    assert line["act"] == ["order", "gateway"]
    assert line["sub"] and line["jti"]
    assert line["reservation_id"] == response.json()["reservation_id"]


def test_settings_read_the_environment(
    monkeypatch: pytest.MonkeyPatch, valkey: ValkeyServer
) -> None:
    from inventory_service.config import Settings

    monkeypatch.setenv("INVENTORY_DATABASE_URL", "postgresql://u:p@db/inventory")
    monkeypatch.setenv("HOPSHOP_REDIS_URL", valkey.url)
    monkeypatch.setenv("HOPSHOP_ENV", "production")
    monkeypatch.setenv("HOPSHOP_ISSUER", "https://auth.example")
    settings = Settings()
    assert settings.database_url == "postgresql://u:p@db/inventory"
    assert settings.redis_url == valkey.url
    assert settings.issuer == "https://auth.example"
    assert settings.should_seed is False
    monkeypatch.delenv("INVENTORY_DATABASE_URL")
    monkeypatch.setenv("HOPSHOP_ENV", "development")
    settings = Settings()
    assert settings.database_url == "sqlite:///var/inventory.db"
    assert settings.should_seed is True
