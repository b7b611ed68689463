"""DPoP at inventory (RFC 9449 §7): only tokens bound to the caller's key, a fresh proof each time.

Inventory runs here as in the stack: DPoP on and required (all its callers are
services), the proofs' ``jti`` kept in the real valkey. The tokens come from the
real issuer: alice's, exchanged by the gateway and then by order with a proof of
order's key (RFC 8693 + RFC 9449 §5), and order's own client-credentials token.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis
from auth_testing import gateway_token
from dpop_testing import (
    assert_dpop_refused,
    bound_client_credentials,
    bound_exchange,
    jwt_claims,
    with_proof,
)
from hopauth import DPoPKey
from hopkit.testing import ServerThread, ValkeyServer, free_port
from inventory_service.app import create_app
from inventory_testing import add_product, bearer, make_settings, reservation


@pytest.fixture(scope="module")
def inventory(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("inventory-dpop")
    # Its own URL, as its callers are given it: what proofs must name (RFC 9449 §4.3).
    port = free_port()
    settings = make_settings(
        tmp, issuer, redis_url=valkey.url, dpop=True, inventory_url=f"http://127.0.0.1:{port}"
    )
    with ServerThread(create_app(settings), port) as server:
        yield server


@pytest.fixture(scope="module")
def url(inventory: ServerThread) -> str:
    return f"{inventory.base_url}/reservations"


@pytest.fixture(scope="module")
def product(inventory: ServerThread) -> int:
    return add_product(inventory.app.state.settings.database_url, 1000)


@pytest.fixture(scope="module")
def order_key() -> DPoPKey:
    return DPoPKey.generate()


@pytest.fixture(scope="module")
def bound_reserver(auth: httpx.Client, order_key: DPoPKey) -> str:
    """alice's token, exchanged by gateway for order, then by order (with its key) for us."""
    at_order = gateway_token(auth, "alice", "order", "orders:write")
    return bound_exchange(auth, order_key, "order", at_order, "inventory", "inventory:reserve")


def test_a_bound_token_with_its_proof_reserves(
    url: str, product: int, order_key: DPoPKey, bound_reserver: str
) -> None:
    response = httpx.post(
        url,
        json=reservation("ord-dpop-1", (product, 1)),
        headers=with_proof(order_key, "POST", url, bound_reserver),
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8003", "inventory:8003"])
def test_a_proof_for_the_host_header_is_refused_one_for_its_url_passes(
    inventory: ServerThread,
    url: str,
    product: int,
    order_key: DPoPKey,
    bound_reserver: str,
    host: str,
) -> None:
    """RFC 9449 §4.3 point 9, §11.1: a proof made for another server, sent with its Host."""
    spoofed = f"http://{host}/reservations"
    order_id = "ord-dpop-host-" + host.replace(".", "-").replace(":", "-")
    response = httpx.post(
        url,
        json=reservation(order_id, (product, 1)),
        headers={**with_proof(order_key, "POST", spoofed, bound_reserver), "Host": host},
    )
    assert_dpop_refused(response, "invalid-dpop-proof", "htu does not match the request URL")
    # The proof for inventory's own URL (HOPSHOP_INVENTORY_URL) passes, whatever the Host.
    assert url.startswith(inventory.app.state.settings.inventory_url)
    response = httpx.post(
        url,
        json=reservation(order_id, (product, 1)),
        headers={**with_proof(order_key, "POST", url, bound_reserver), "Host": host},
    )
    assert response.status_code == 201, response.text


def test_an_unbound_token_is_refused(url: str, product: int, reserver: str) -> None:
    """The plain exchanged token that inventory accepted before DPoP: refused, not downgraded."""
    response = httpx.post(
        url, json=reservation("ord-dpop-2", (product, 1)), headers=bearer(reserver)
    )
    assert_dpop_refused(response, "invalid-token", "accepts only DPoP-bound tokens")


def test_a_bound_token_presented_as_bearer_is_refused(
    url: str, product: int, bound_reserver: str
) -> None:
    """What a thief who captured the token but not the key can send."""
    response = httpx.post(
        url, json=reservation("ord-dpop-3", (product, 1)), headers=bearer(bound_reserver)
    )
    assert_dpop_refused(response, "invalid-token", "presented as a bearer token")


def test_a_proof_from_another_key_is_refused(url: str, product: int, bound_reserver: str) -> None:
    thief = DPoPKey.generate()
    response = httpx.post(
        url,
        json=reservation("ord-dpop-4", (product, 1)),
        headers=with_proof(thief, "POST", url, bound_reserver),
    )
    assert_dpop_refused(response, "invalid-dpop-proof", "does not match the token's key")


def test_a_replayed_proof_is_refused_and_its_jti_is_kept_in_valkey(
    url: str, product: int, order_key: DPoPKey, bound_reserver: str, valkey: ValkeyServer
) -> None:
    headers = with_proof(order_key, "POST", url, bound_reserver)
    first = httpx.post(url, json=reservation("ord-dpop-5", (product, 1)), headers=headers)
    assert first.status_code == 201, first.text
    # The same request again, proof and all: what a man in the middle would replay.
    again = httpx.post(url, json=reservation("ord-dpop-5", (product, 1)), headers=headers)
    assert_dpop_refused(again, "invalid-dpop-proof", "replayed")

    jti = jwt_claims(headers["DPoP"])["jti"]
    with redis.Redis.from_url(valkey.url) as store:
        ttl = store.ttl(f"hopauth:dpop-jti:{jti}")
    assert 0 < ttl <= 65  # remembered until the proof would be too old anyway (60 s + 5 s)


@pytest.mark.parametrize("client_id", ["order", "order-scheduler"])
def test_release_with_a_bound_client_credentials_token(
    auth: httpx.Client,
    url: str,
    product: int,
    order_key: DPoPKey,
    bound_reserver: str,
    client_id: str,
) -> None:
    order_id = f"ord-dpop-{client_id}"
    reserved = httpx.post(
        url,
        json=reservation(order_id, (product, 1)),
        headers=with_proof(order_key, "POST", url, bound_reserver),
    )
    assert reserved.status_code == 201, reserved.text
    # Each identity has a key of its own (the service's and its job's).
    key = DPoPKey.generate()
    token = bound_client_credentials(auth, key, client_id, "inventory", "inventory:release")
    release = f"{url}/{order_id}/release"
    refused = httpx.post(release, headers=bearer(token))
    assert_dpop_refused(refused, "invalid-token", "presented as a bearer token")
    response = httpx.post(release, headers=with_proof(key, "POST", release, token))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "RELEASED"
