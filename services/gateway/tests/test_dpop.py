"""DPoP through the gateway (RFC 9449): what it sends downstream, what it takes from clients.

The test shop (conftest) runs as the stack does: DPoP on everywhere, and
required by every service behind the gateway. So every test here that gets
past the gateway (orders placed, paid and notified, support views, broadcasts)
already shows the gateway and the workers sending bound tokens with proofs.
This module pins down the rest: the switch, the exact headers of a hop, and
clients that hold a key of their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from auth_testing import authorization_code
from dpop_testing import assert_dpop_refused, jwt_claims, redeem, with_proof
from gateway_service.hops import HopToken
from gateway_testing import StartGateway, bearer
from hopauth import DPoPKey
from hopauth.rfc9449 import access_token_hash
from hopkit.testing import ServerThread
from shop_testing import Shop


def test_every_service_behind_the_gateway_requires_dpop(
    http: httpx.Client, gateway: ServerThread, shop: Shop
) -> None:
    for service in shop.servers:
        assert service.app.state.hopauth_dpop is not None
        assert service.app.state.hopauth_require_dpop is True
    # The gateway checks proofs of bound tokens, but takes browsers' bearer tokens too.
    assert gateway.app.state.hopauth_dpop is not None
    assert gateway.app.state.hopauth_require_dpop is False
    assert http.get("/stats").json()["dpop"] is True


def sent(token: HopToken, method: str, url: str) -> httpx.Request:
    """The request as the token's auth flow hands it to the transport."""
    return next(token.auth_flow(httpx.Request(method, url)))


def test_a_bound_hop_carries_a_proof_for_exactly_its_request() -> None:
    key = DPoPKey.generate()
    token = HopToken("exchanged.token.value", key)
    request = sent(token, "POST", "http://127.0.0.1:8002/orders?page=2")
    assert request.headers["authorization"] == "DPoP exchanged.token.value"
    proof = jwt_claims(request.headers["dpop"])
    assert proof["htm"] == "POST"
    assert proof["htu"] == "http://127.0.0.1:8002/orders"  # no query (RFC 9449 §4.2)
    assert proof["ath"] == access_token_hash("exchanged.token.value")
    again = jwt_claims(sent(token, "POST", "http://127.0.0.1:8002/orders").headers["dpop"])
    assert again["jti"] != proof["jti"]  # a fresh proof for every request


def test_an_unbound_hop_is_a_bearer_token_and_never_shows_it() -> None:
    token = HopToken("forwarded.user.token", None)
    request = sent(token, "GET", "http://127.0.0.1:8002/orders")
    assert request.headers["authorization"] == "Bearer forwarded.user.token"
    assert "dpop" not in request.headers
    assert "forwarded" not in repr(token) and "forwarded" not in repr(HopToken("x", None))


@pytest.mark.parametrize("overrides", [{"dpop": False}, {"propagation": "forward"}])
def test_the_switch_and_forward_mode_turn_it_off(
    start_gateway: StartGateway, overrides: dict[str, object]
) -> None:
    gateway = start_gateway(**overrides)
    assert gateway.app.state.hopauth_dpop is None
    assert gateway.app.state.dpop_keys.for_client("gateway") is None
    assert httpx.get(f"{gateway.base_url}/stats").json()["dpop"] is False


# -- a client of the public API that holds a key of its own ------------------------------


@pytest.fixture(scope="module")
def client_key() -> DPoPKey:
    return DPoPKey.generate()


@pytest.fixture(scope="module")
def bound_bob(auth: httpx.Client, client_key: DPoPKey) -> Iterator[str]:
    """bob's login token, redeemed with a proof (RFC 9449 §5): bound to the client's key."""
    code, verifier = authorization_code(auth, "bob")
    response = redeem(
        auth, code, verifier, client_key.proof("POST", str(auth.base_url.join("/token")))
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    yield response.json()["access_token"]


def test_a_bound_user_token_with_its_proof_is_served(
    gateway: ServerThread, client_key: DPoPKey, bound_bob: str
) -> None:
    url = f"{gateway.base_url}/api/orders"
    response = httpx.get(url, headers=with_proof(client_key, "GET", url, bound_bob), timeout=15)
    assert response.status_code == 200, response.text


def test_a_bound_user_token_presented_as_bearer_is_refused(
    gateway: ServerThread, bound_bob: str
) -> None:
    response = httpx.get(f"{gateway.base_url}/api/orders", headers=bearer(bound_bob))
    assert_dpop_refused(response, "invalid-token", "presented as a bearer token")


def test_a_replayed_proof_is_refused_at_the_gateway(
    gateway: ServerThread, client_key: DPoPKey, bound_bob: str
) -> None:
    url = f"{gateway.base_url}/api/orders"
    headers = with_proof(client_key, "GET", url, bound_bob)
    assert httpx.get(url, headers=headers, timeout=15).status_code == 200
    assert_dpop_refused(httpx.get(url, headers=headers), "invalid-dpop-proof", "replayed")
