"""The vulnerable teaching mode: loud at start-up, stamped on every response."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from gateway_testing import StartGateway, bearer

MODE = "x-hopshop-mode"


@pytest.fixture(scope="module")
def forwarding(
    start_gateway: StartGateway, caplog_module: list[logging.LogRecord]
) -> Iterator[httpx.Client]:
    server = start_gateway(propagation="forward")
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def caplog_module() -> Iterator[list[logging.LogRecord]]:
    """Log records of the module's set-up (caplog is function-scoped)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    logging.getLogger().addHandler(handler)
    yield records
    logging.getLogger().removeHandler(handler)


def test_start_up_warns_loudly(
    forwarding: httpx.Client, caplog_module: list[logging.LogRecord]
) -> None:
    warnings = [r.getMessage() for r in caplog_module if r.name == "gateway_service.forwarding"]
    assert len(warnings) == 1
    assert "VULNERABLE" in warnings[0]
    assert "HOPSHOP_PROPAGATION=forward" in warnings[0]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/products"),
        ("GET", "/api/orders"),  # 401: no token
        ("GET", "/"),
        ("GET", "/config.json"),
        ("GET", "/healthz"),
        ("GET", "/nowhere"),  # 404
    ],
)
def test_every_response_says_so(forwarding: httpx.Client, method: str, path: str) -> None:
    response = forwarding.request(method, path)
    assert response.headers[MODE] == "vulnerable-forwarding"


def test_a_bad_token_is_still_refused_in_forward_mode(forwarding: httpx.Client) -> None:
    response = forwarding.get("/api/orders", headers=bearer("junk"))
    assert response.status_code == 401
    assert response.headers[MODE] == "vulnerable-forwarding"


def test_exchange_mode_has_no_such_header(http: httpx.Client) -> None:
    for path in ("/api/products", "/api/orders", "/"):
        assert MODE not in http.get(path).headers


def test_stats_name_the_mode(forwarding: httpx.Client, http: httpx.Client) -> None:
    assert forwarding.get("/stats").json()["propagation"] == "forward"
    assert http.get("/stats").json()["propagation"] == "exchange"
