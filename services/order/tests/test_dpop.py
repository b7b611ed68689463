"""DPoP at order, both sides (RFC 9449): bound tokens in, bound tokens out.

Order and inventory run here as in the stack: DPoP on and required at both.
Receiving: only tokens bound to the caller's key, each request with a fresh
proof, each proof once (its ``jti`` in the real valkey). Sending: order binds
what it exchanges for inventory to its own key (placing an order), and its
client-credentials token too (releasing the stock of a cancelled order), so
inventory, which takes nothing else, says yes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from auth_testing import login
from dpop_testing import (
    assert_dpop_refused,
    bound_client_credentials,
    bound_exchange,
    with_proof,
)
from hopauth import DPoPKey
from hopkit.testing import ServerThread, ValkeyServer, free_port
from inventory_service.app import create_app as create_inventory_app
from inventory_testing import add_product
from inventory_testing import make_settings as make_inventory_settings
from order_service.app import create_app
from order_testing import bearer, make_settings, order_body


@pytest.fixture(scope="module")
def inventory(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("inventory-dpop")
    port = free_port()
    settings = make_inventory_settings(
        tmp, issuer, redis_url=valkey.url, dpop=True, inventory_url=f"http://127.0.0.1:{port}"
    )
    with ServerThread(create_inventory_app(settings), port) as server:
        yield server


@pytest.fixture(scope="module")
def order(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: str,
    valkey: ValkeyServer,
    inventory: ServerThread,
) -> Iterator[ServerThread]:
    port = free_port()
    settings = make_settings(
        tmp_path_factory.mktemp("order-dpop"),
        issuer,
        redis_url=valkey.url,
        inventory_url=inventory.base_url,
        order_url=f"http://127.0.0.1:{port}",
        dpop=True,
    )
    with ServerThread(create_app(settings), port) as server:
        yield server


@pytest.fixture(scope="module")
def gateway_key() -> DPoPKey:
    return DPoPKey.generate()


@pytest.fixture(scope="module")
def bound_alice(auth: httpx.Client, gateway_key: DPoPKey) -> str:
    """alice's token as the gateway exchanges it for order, bound to the gateway's key."""
    user = login(auth, "alice").access_token
    return bound_exchange(auth, gateway_key, "gateway", user, "order", "orders:read orders:write")


def place(order: ServerThread, inventory: ServerThread, key: DPoPKey, token: str) -> Any:
    product = add_product(inventory.app.state.settings.database_url, 5, price_cents=500)
    url = f"{order.base_url}/orders"
    response = httpx.post(
        url, json=order_body((product, 2)), headers=with_proof(key, "POST", url, token), timeout=15
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_placing_an_order_sends_inventory_a_token_bound_to_orders_key(
    order: ServerThread, inventory: ServerThread, gateway_key: DPoPKey, bound_alice: str
) -> None:
    """Inventory requires DPoP: the reservation only goes through with order's proof."""
    placed = place(order, inventory, gateway_key, bound_alice)
    assert placed["status"] == "PENDING_PAYMENT"
    assert order.app.state.token_exchanger.dpop_key is not None


def test_cancelling_releases_the_stock_with_a_bound_client_credentials_token(
    order: ServerThread, inventory: ServerThread, gateway_key: DPoPKey, bound_alice: str
) -> None:
    placed = place(order, inventory, gateway_key, bound_alice)
    url = f"{order.base_url}/orders/{placed['id']}/cancel"
    response = httpx.post(url, headers=with_proof(gateway_key, "POST", url, bound_alice))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"


def test_the_service_and_its_job_each_have_a_key(order: ServerThread) -> None:
    keys = order.app.state.dpop_keys
    service, job = keys.for_client("order"), keys.for_client("order-scheduler")
    assert service is not None and job is not None
    assert service.thumbprint != job.thumbprint
    assert order.app.state.token_exchanger.dpop_key is service


def test_an_unbound_token_is_refused(order: ServerThread, alice: str) -> None:
    """alice's plain gateway-exchanged token, which order accepted before DPoP."""
    response = httpx.get(f"{order.base_url}/orders", headers=bearer(alice))
    assert_dpop_refused(response, "invalid-token", "accepts only DPoP-bound tokens")


def test_a_bound_token_presented_as_bearer_is_refused(
    order: ServerThread, bound_alice: str
) -> None:
    response = httpx.get(f"{order.base_url}/orders", headers=bearer(bound_alice))
    assert_dpop_refused(response, "invalid-token", "presented as a bearer token")


def test_a_replayed_proof_is_refused(
    order: ServerThread, gateway_key: DPoPKey, bound_alice: str
) -> None:
    url = f"{order.base_url}/orders"
    headers = with_proof(gateway_key, "GET", url, bound_alice)
    first = httpx.get(url, headers=headers)
    assert first.status_code == 200, first.text
    assert_dpop_refused(httpx.get(url, headers=headers), "invalid-dpop-proof", "replayed")


def test_a_proof_for_another_request_is_refused(
    order: ServerThread, gateway_key: DPoPKey, bound_alice: str
) -> None:
    """A proof names its method and URL (``htm``, ``htu``): it opens nothing else."""
    proof_for_list = with_proof(gateway_key, "GET", f"{order.base_url}/orders", bound_alice)
    response = httpx.get(f"{order.base_url}/orders/ord_other", headers=proof_for_list)
    assert_dpop_refused(response, "invalid-dpop-proof", "htu does not match")


def test_the_billing_workers_bound_token_reads_internal_orders(
    auth: httpx.Client,
    order: ServerThread,
    inventory: ServerThread,
    gateway_key: DPoPKey,
    bound_alice: str,
) -> None:
    placed = place(order, inventory, gateway_key, bound_alice)
    worker_key = DPoPKey.generate()
    token = bound_client_credentials(auth, worker_key, "billing-worker", "order", "orders:read")
    url = f"{order.base_url}/internal/orders/{placed['id']}"
    assert_dpop_refused(httpx.get(url, headers=bearer(token)), "invalid-token", "bearer token")
    response = httpx.get(url, headers=with_proof(worker_key, "GET", url, token))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == placed["id"]
