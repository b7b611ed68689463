"""Health, readiness, the OpenAPI document, request ids and the audit log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from billing_testing import bearer, invoice_token


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    from hopkit.logs import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("billing"))
    root = logging.getLogger()
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)


def test_healthz_and_readyz(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    # No broker configured for this instance: readiness does not ask for one.
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_openapi_documents_bearer_auth_on_invoices(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    operation = spec["paths"]["/invoices"]["get"]
    assert operation["security"] == [{"HTTPBearer": []}]
    assert {"200", "401", "403"} <= set(operation["responses"])
    docs = http.get("/docs")
    assert docs.status_code == 200
    # Offline workshops: Swagger UI comes from the service itself, never a CDN.
    assert "cdn." not in docs.text and "://" not in docs.text
    assert http.get("/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_request_id_is_echoed(http: httpx.Client) -> None:
    response = http.get("/healthz", headers={"x-request-id": "req-42"})
    assert response.headers["x-request-id"] == "req-42"


def test_the_log_says_who_read_invoices_and_never_holds_the_token(
    http: httpx.Client, auth: httpx.Client
) -> None:
    token = invoice_token(auth, "alice")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    with captured_logs() as stream:
        response = http.get(
            "/invoices",
            headers={
                **bearer(token),
                "x-request-id": "req-inv-1",
                "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
            },
        )
        refused = http.get("/invoices", headers=bearer("e30.e30.x"))
    assert response.status_code == 200, response.text
    assert refused.status_code == 401
    text = stream.getvalue()
    assert token not in text
    assert "e30.e30.x" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    (line,) = [entry for entry in lines if entry.get("request_id") == "req-inv-1"]
    assert line["service"] == "billing"
    assert line["trace_id"] == trace_id
    assert line["action"] == "list-invoices"
    assert line["status"] == 200
    assert line["client_id"] == "gateway"
    assert line["act"] == ["gateway"]
    assert line["sub"] and line["jti"]
