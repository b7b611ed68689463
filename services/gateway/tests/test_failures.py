"""What a failure behind the gateway looks like at the edge: 502/503/504 problems, never a 500."""

from __future__ import annotations

import httpx
from auth_testing import Login
from gateway_testing import StartGateway, assert_problem, bearer, black_hole, dead_url


def test_a_service_that_is_down_is_a_503(start_gateway: StartGateway, alice: Login) -> None:
    server = start_gateway(order_url=dead_url(), inventory_url=dead_url())
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        products = client.get("/api/products")
        orders = client.get("/api/orders", headers=bearer(alice.access_token))
    assert assert_problem(products, 503, "downstream-unavailable")["service"] == "inventory"
    assert assert_problem(orders, 503, "downstream-unavailable")["service"] == "order"


def test_a_service_that_hangs_is_a_504(start_gateway: StartGateway) -> None:
    with black_hole() as url:
        server = start_gateway(inventory_url=url, downstream_timeout=0.3)
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            response = client.get("/api/products")
    assert assert_problem(response, 504, "downstream-timeout")["service"] == "inventory"


def test_an_issuer_that_cannot_exchange_is_a_503(start_gateway: StartGateway, alice: Login) -> None:
    # Keys come from the issuer as usual, but its token endpoint is unreachable.
    server = start_gateway(auth_url=dead_url())
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        response = client.get("/api/invoices", headers=bearer(alice.access_token))
    assert assert_problem(response, 503, "downstream-unavailable")["service"] == "auth"


def test_a_wrong_client_secret_is_a_502_not_the_users_fault(
    start_gateway: StartGateway, alice: Login
) -> None:
    server = start_gateway(client_secret="not-the-secret")
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        response = client.get("/api/invoices", headers=bearer(alice.access_token))
    problem = assert_problem(response, 502, "downstream-error")
    assert problem["service"] == "auth"
    assert "secret" not in response.text
