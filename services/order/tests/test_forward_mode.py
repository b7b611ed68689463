"""Forward mode (the vulnerable teaching mode): order takes the customer's own token and
forwards it to inventory unchanged.

A forward-mode order service and a forward-mode inventory run next to the
session's exchange-mode pair; each attack that succeeds on the first is tried
on the second, where it fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from auth_testing import bad_token, claims, login, mint, service_token
from hopauth import TokenEndpoint, TokenExchangeAuth, TokenExchanger
from hopkit.settings import Propagation
from hopkit.testing import ServerThread, ValkeyServer
from inventory_service.app import create_app as create_inventory_app
from inventory_testing import add_product
from inventory_testing import make_settings as make_inventory_settings
from order_service.app import create_app
from order_service.hops import ForwardedToken, HopTokens
from order_testing import assert_problem, available, bearer, make_settings, order_body

MODE = "x-hopshop-mode"


@pytest.fixture(scope="module")
def forward_inventory(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    settings = make_inventory_settings(
        tmp_path_factory.mktemp("inventory-forward"),
        issuer,
        redis_url=valkey.url,
        propagation="forward",
    )
    with ServerThread(create_inventory_app(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def forward_server(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: str,
    valkey: ValkeyServer,
    forward_inventory: ServerThread,
) -> Iterator[ServerThread]:
    # No Kafka: the placed orders' events stay in the outbox, which is all these tests need.
    settings = make_settings(
        tmp_path_factory.mktemp("order-forward"),
        issuer,
        redis_url=valkey.url,
        inventory_url=forward_inventory.base_url,
        propagation="forward",
    )
    with ServerThread(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def forward(forward_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=forward_server.base_url, timeout=15) as client:
        yield client


@pytest.fixture(scope="module")
def forward_stock(forward_inventory: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=forward_inventory.base_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def product(forward_inventory: ServerThread) -> int:
    return add_product(forward_inventory.app.state.settings.database_url, 10)


@pytest.fixture(scope="module")
def alice_login(auth: httpx.Client) -> str:
    """alice's own login token: aud=gateway, client web, no act."""
    return login(auth, "alice").access_token


@pytest.fixture(scope="module")
def bob_login(auth: httpx.Client) -> str:
    return login(auth, "bob").access_token


def test_the_customers_gateway_token_places_an_order_reserved_with_that_same_token(
    forward: httpx.Client, forward_stock: httpx.Client, alice_login: str, product: int
) -> None:
    assert claims(alice_login)["aud"] == "gateway"
    placed = forward.post("/orders", json=order_body((product, 2)), headers=bearer(alice_login))
    assert placed.status_code == 201, placed.text
    assert placed.headers[MODE] == "vulnerable-forwarding"
    assert placed.json()["customer_id"] == claims(alice_login)["sub"]
    # Order could not have exchanged a token addressed to the gateway: inventory took
    # the customer's own token, forwarded.
    assert available(forward_stock, product) == 8

    listed = forward.get("/orders", headers=bearer(alice_login))
    assert listed.status_code == 200, listed.text
    assert placed.json()["id"] in [o["id"] for o in listed.json()]


def test_the_same_token_is_refused_in_exchange_mode(http: httpx.Client, alice_login: str) -> None:
    response = http.get("/orders", headers=bearer(alice_login))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert "audience" in response.headers["www-authenticate"]
    assert MODE not in response.headers


def test_any_customer_reads_any_order_through_the_billing_workers_route(
    forward: httpx.Client,
    http: httpx.Client,
    alice_login: str,
    bob_login: str,
    alice: str,
    product: int,
) -> None:
    placed = forward.post("/orders", json=order_body((product, 1)), headers=bearer(alice_login))
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    # bob's own customer route hides alice's order ...
    assert_problem(forward.get(f"/orders/{order_id}", headers=bearer(bob_login)), 404)
    # ... but the internal route, once guarded by its caller alone, hands it over.
    leaked = forward.get(f"/internal/orders/{order_id}", headers=bearer(bob_login))
    assert leaked.status_code == 200, leaked.text
    assert leaked.json()["customer_id"] == claims(alice_login)["sub"]
    # In exchange mode a customer's token, even one made for order, is not the billing worker.
    refused = http.get("/internal/orders/ord_x", headers=bearer(alice))
    assert_problem(refused, 403, "urn:hopauth:problem:forbidden-caller")


def test_the_notification_workers_status_view_keeps_its_scope(
    forward: httpx.Client, auth: httpx.Client, alice_login: str, product: int
) -> None:
    placed = forward.post("/orders", json=order_body((product, 1)), headers=bearer(alice_login))
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    path = f"/internal/orders/{order_id}/status"
    notifier = service_token(auth, "notification-worker", "order", "orders:status")
    response = forward.get(path, headers=bearer(notifier))
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"id", "customer_id", "status", "reason"}
    # The caller check is gone, but no customer holds orders:status: her token is refused ...
    assert_problem(
        forward.get(path, headers=bearer(alice_login)),
        403,
        "urn:hopauth:problem:insufficient-scope",
    )
    # ... and the worker's token still lacks orders:read for the full order.
    assert_problem(
        forward.get(f"/internal/orders/{order_id}", headers=bearer(notifier)),
        403,
        "urn:hopauth:problem:insufficient-scope",
    )


def test_the_users_own_scope_is_still_needed(
    forward: httpx.Client, auth_server: ServerThread, product: int
) -> None:
    reader = mint(auth_server, audience="gateway", client_id="web", scopes=["orders:read"])
    response = forward.post("/orders", json=order_body((product, 1)), headers=bearer(reader))
    assert_problem(response, 403, "urn:hopauth:problem:insufficient-scope")


@pytest.mark.parametrize("kind", ["forged", "expired"])
def test_bad_tokens_are_still_refused(
    forward: httpx.Client, auth_server: ServerThread, alice_login: str, kind: str
) -> None:
    token = bad_token(kind, auth_server, alice_login, "orders:read")
    response = forward.get("/orders", headers=bearer(token))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert response.headers[MODE] == "vulnerable-forwarding"


async def test_hop_tokens_forward_or_exchange_by_mode() -> None:
    async with httpx.AsyncClient() as http:
        exchanger = TokenExchanger(
            TokenEndpoint(
                token_url="http://127.0.0.1:1/token",
                client_id="order",
                client_secret="never-used",
                http=http,
            )
        )
        forwarded = HopTokens(Propagation.FORWARD, exchanger).for_user(
            "the-users-token", audience="inventory", scopes=["inventory:reserve"]
        )
        assert isinstance(forwarded, ForwardedToken)
        assert "the-users-token" not in repr(forwarded)
        request = httpx.Request("POST", "http://inventory/reservations")
        sent = next(forwarded.auth_flow(request))
        assert sent.headers["authorization"] == "Bearer the-users-token"

        exchanged = HopTokens(Propagation.EXCHANGE, exchanger).for_user(
            "the-users-token", audience="inventory", scopes=["inventory:reserve"]
        )
        assert isinstance(exchanged, TokenExchangeAuth)
