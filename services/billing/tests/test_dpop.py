"""DPoP at billing, both sides (RFC 9449): bound tokens in, the worker's bound token out.

Receiving: billing's API runs with DPoP on and required (its one caller is the
gateway), proofs' ``jti`` in the real valkey. Sending: the worker's order
client, with the worker's key, reads an order from an order service that takes
nothing but bound tokens; without the key it is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from auth_testing import login
from billing_service.app import create_app
from billing_service.config import DEV_WORKER_SECRET, WORKER_CLIENT_ID
from billing_service.orders import OrderClient, OrderServiceError, order_credentials, order_http
from billing_service.schemas import Order
from billing_testing import (
    add_invoice,
    bearer,
    invoice_token,
    make_settings,
    product_id,
    subject_of,
)
from dpop_testing import assert_dpop_refused, bound_exchange, with_proof
from hopauth import DPoPKey, TokenEndpoint
from hopkit.testing import ServerThread, ValkeyServer, free_port
from inventory_service.app import create_app as create_inventory_app
from inventory_testing import make_settings as make_inventory_settings
from order_service.app import create_app as create_order_app
from order_testing import make_settings as make_order_settings


@pytest.fixture(scope="module")
def billing(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("billing-dpop")
    port = free_port()
    settings = make_settings(
        tmp, issuer, redis_url=valkey.url, dpop=True, billing_url=f"http://127.0.0.1:{port}"
    )
    with ServerThread(create_app(settings), port) as server:
        yield server


@pytest.fixture(scope="module")
def gateway_key() -> DPoPKey:
    return DPoPKey.generate()


@pytest.fixture(scope="module")
def user_token(auth: httpx.Client) -> str:
    return login(auth, "alice").access_token


@pytest.fixture(scope="module")
def bound_alice(auth: httpx.Client, gateway_key: DPoPKey, user_token: str) -> str:
    """alice's token as the gateway exchanges it for billing, bound to the gateway's key."""
    return bound_exchange(auth, gateway_key, "gateway", user_token, "billing", "billing:read")


@pytest.fixture(scope="module")
def invoices_url(billing: ServerThread, bound_alice: str) -> str:
    add_invoice(billing.app.state.settings.database_url, subject_of(bound_alice))
    return f"{billing.base_url}/invoices"


def test_a_bound_token_with_its_proof_reads_the_invoices(
    invoices_url: str, gateway_key: DPoPKey, bound_alice: str
) -> None:
    response = httpx.get(
        invoices_url, headers=with_proof(gateway_key, "GET", invoices_url, bound_alice)
    )
    assert response.status_code == 200, response.text
    assert len(response.json()) == 1


def test_an_unbound_token_is_refused(invoices_url: str, auth: httpx.Client) -> None:
    """alice's plain gateway-exchanged token, which billing accepted before DPoP."""
    response = httpx.get(invoices_url, headers=bearer(invoice_token(auth, "alice")))
    assert_dpop_refused(response, "invalid-token", "accepts only DPoP-bound tokens")


def test_a_bound_token_presented_as_bearer_is_refused(invoices_url: str, bound_alice: str) -> None:
    response = httpx.get(invoices_url, headers=bearer(bound_alice))
    assert_dpop_refused(response, "invalid-token", "presented as a bearer token")


def test_a_replayed_proof_is_refused(
    invoices_url: str, gateway_key: DPoPKey, bound_alice: str
) -> None:
    headers = with_proof(gateway_key, "GET", invoices_url, bound_alice)
    assert httpx.get(invoices_url, headers=headers).status_code == 200
    assert_dpop_refused(httpx.get(invoices_url, headers=headers), "invalid-dpop-proof", "replayed")


# -- the worker's side: its token for the order service ---------------------------------


@pytest.fixture(scope="module")
def shop(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[tuple[ServerThread, ServerThread]]:
    """Inventory and order as in the stack (DPoP on), without Kafka."""
    tmp = tmp_path_factory.mktemp("shop-dpop")
    # Each is given every URL, its own included, as the stack does.
    ports = {"inventory": free_port(), "order": free_port()}
    urls = {f"{name}_url": f"http://127.0.0.1:{port}" for name, port in ports.items()}
    inventory_settings = make_inventory_settings(
        tmp, issuer, redis_url=valkey.url, dpop=True, **urls
    )
    with ServerThread(create_inventory_app(inventory_settings), ports["inventory"]) as inventory:
        order_settings = make_order_settings(tmp, issuer, redis_url=valkey.url, dpop=True, **urls)
        with ServerThread(create_order_app(order_settings), ports["order"]) as order:
            yield inventory, order


@pytest.fixture(scope="module")
def placed_order_id(
    auth: httpx.Client, shop: tuple[ServerThread, ServerThread], user_token: str
) -> str:
    inventory, order = shop
    key = DPoPKey.generate()
    token = bound_exchange(auth, key, "gateway", user_token, "order", "orders:write")
    with httpx.Client(base_url=inventory.base_url) as client:
        mug = product_id(client, "HOP-MUG")
    url = f"{order.base_url}/orders"
    response = httpx.post(
        url,
        json={"items": [{"product_id": mug, "quantity": 1}], "card": "4242424242424242"},
        headers=with_proof(key, "POST", url, token),
        timeout=15,
    )
    assert response.status_code == 201, response.text
    order_id: str = response.json()["id"]
    return order_id


def fetch(issuer: str, order_url: str, order_id: str, key: DPoPKey | None) -> Order | None:
    """billing's own order client, built as its worker builds it, with ``key`` or none."""

    async def run() -> Order | None:
        async with httpx.AsyncClient(timeout=5) as http:
            endpoint = TokenEndpoint(
                token_url=f"{issuer}/token",
                client_id=WORKER_CLIENT_ID,
                client_secret=DEV_WORKER_SECRET,
                http=http,
                dpop_key=key,
            )
            async with order_http(order_url, order_credentials(endpoint), 5.0) as orders:
                return await OrderClient(orders).fetch(order_id)

    return asyncio.run(run())


def test_the_worker_reads_the_order_with_its_bound_token(
    issuer: str, shop: tuple[ServerThread, ServerThread], placed_order_id: str
) -> None:
    order = fetch(issuer, shop[1].base_url, placed_order_id, DPoPKey.generate())
    assert order is not None and order.id == placed_order_id


def test_without_a_key_the_worker_is_refused(
    issuer: str, shop: tuple[ServerThread, ServerThread], placed_order_id: str
) -> None:
    with pytest.raises(OrderServiceError, match="answered 401"):
        fetch(issuer, shop[1].base_url, placed_order_id, None)
