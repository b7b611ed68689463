"""A DPoP resource server built from hopauth, with tokens from the real issuer, over real HTTP.

"order" here is a small FastAPI app as a service would write it: hopauth's
validator, its DPoP switch on and required, the replay cache in the real
valkey. The calling side is hopauth's TokenEndpoint with a DPoP key; the
attacks are plain HTTP requests replaying what a thief could capture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx
import pytest
from auth_testing import ServerThread, ValkeyServer, claims, free_port, login
from fastapi import Depends, FastAPI
from hopauth import (
    ClientCredentials,
    ClientCredentialsAuth,
    DPoPKey,
    Principal,
    TokenEndpoint,
    TokenExchangeAuth,
    TokenExchanger,
)
from hopauth.fastapi import Requires
from resource_testing import resource_app, token_endpoint


def order_service(issuer: str, redis_url: str, origin: str) -> FastAPI:
    """DPoP required: only bound tokens, each request with a fresh proof for ``origin``."""
    app = resource_app(issuer, redis_url, "order", dpop_origin=origin)

    @app.get("/orders")
    async def orders(
        principal: Annotated[Principal, Depends(Requires("orders:read"))],
    ) -> dict[str, Any]:
        return {"sub": principal.subject, "jkt": principal.confirmation_jkt}

    @app.post("/orders")
    async def place(
        body: dict[str, Any], principal: Annotated[Principal, Depends(Requires("orders:read"))]
    ) -> dict[str, Any]:
        return {"sub": principal.subject, "body": body}

    return app


@pytest.fixture(scope="module")
def order(auth_server: ServerThread, valkey: ValkeyServer) -> Iterator[ServerThread]:
    port = free_port()
    app = order_service(auth_server.base_url, valkey.url, f"http://127.0.0.1:{port}")
    with ServerThread(app, port) as server:
        yield server


def endpoint(
    auth_server: ServerThread, http: httpx.AsyncClient, client_id: str, key: DPoPKey | None
) -> TokenEndpoint:
    return token_endpoint(auth_server.base_url, http, client_id, key)


@pytest.fixture
async def issuer_http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


@pytest.fixture
async def api(order: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=order.base_url, timeout=10) as http:
        yield http


@pytest.fixture
def key() -> DPoPKey:
    return DPoPKey.generate()


@pytest.fixture
async def bound_token(
    auth_server: ServerThread, issuer_http: httpx.AsyncClient, key: DPoPKey
) -> str:
    response = await endpoint(auth_server, issuer_http, "billing-worker", key).client_credentials(
        audience="order", scopes=["orders:read"]
    )
    assert response.token_type == "DPoP"
    return response.access_token


def dpop(token: str, proof: str) -> dict[str, str]:
    return {"Authorization": f"DPoP {token}", "DPoP": proof}


def assert_refused(response: httpx.Response, error: str, detail: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert f'error="{error}"' in response.headers["www-authenticate"]
    assert response.headers["www-authenticate"].startswith("DPoP ")
    assert response.json()["detail"] == detail


async def test_bound_token_with_a_valid_proof(
    api: httpx.AsyncClient, order: ServerThread, key: DPoPKey, bound_token: str
) -> None:
    proof = key.proof("GET", f"{order.base_url}/orders", access_token=bound_token)
    response = await api.get("/orders", headers=dpop(bound_token, proof))
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": "billing-worker", "jkt": key.thumbprint}


async def test_captured_proof_replayed(
    api: httpx.AsyncClient, order: ServerThread, key: DPoPKey, bound_token: str
) -> None:
    proof = key.proof("GET", f"{order.base_url}/orders", access_token=bound_token)
    assert (await api.get("/orders", headers=dpop(bound_token, proof))).status_code == 200
    replayed = await api.get("/orders", headers=dpop(bound_token, proof))
    assert_refused(replayed, "invalid_dpop_proof", "proof replayed (jti already used)")


async def test_stolen_token_with_the_thiefs_own_proof(
    api: httpx.AsyncClient, order: ServerThread, bound_token: str
) -> None:
    thief = DPoPKey.generate()
    proof = thief.proof("GET", f"{order.base_url}/orders", access_token=bound_token)
    response = await api.get("/orders", headers=dpop(bound_token, proof))
    assert_refused(response, "invalid_dpop_proof", "proof key does not match the token's key")


async def test_bound_token_as_a_bearer_token(api: httpx.AsyncClient, bound_token: str) -> None:
    response = await api.get("/orders", headers={"Authorization": f"Bearer {bound_token}"})
    assert_refused(response, "invalid_token", "DPoP-bound token presented as a bearer token")


async def test_unbound_token_is_refused_when_dpop_is_required(
    api: httpx.AsyncClient, auth_server: ServerThread, issuer_http: httpx.AsyncClient
) -> None:
    plain = await endpoint(auth_server, issuer_http, "billing-worker", None).client_credentials(
        audience="order", scopes=["orders:read"]
    )
    assert plain.token_type == "Bearer"
    response = await api.get("/orders", headers={"Authorization": f"Bearer {plain.access_token}"})
    assert_refused(response, "invalid_token", "this service accepts only DPoP-bound tokens")


@pytest.mark.parametrize(
    ("method", "path", "detail"),
    [
        ("POST", "/orders", "htm does not match the request method"),
        ("GET", "/orders/1", "htu does not match the request URL"),
    ],
)
async def test_proof_for_another_method_or_url(
    api: httpx.AsyncClient,
    order: ServerThread,
    key: DPoPKey,
    bound_token: str,
    method: str,
    path: str,
    detail: str,
) -> None:
    proof = key.proof(method, f"{order.base_url}{path}", access_token=bound_token)
    response = await api.get("/orders", headers=dpop(bound_token, proof))
    assert_refused(response, "invalid_dpop_proof", detail)


async def test_proof_made_for_another_service(
    api: httpx.AsyncClient, key: DPoPKey, bound_token: str
) -> None:
    proof = key.proof("GET", "http://127.0.0.1:1/orders", access_token=bound_token)
    response = await api.get("/orders", headers=dpop(bound_token, proof))
    assert_refused(response, "invalid_dpop_proof", "htu does not match the request URL")


async def test_proof_made_for_another_service_sent_with_its_host(
    api: httpx.AsyncClient, order: ServerThread, key: DPoPKey, bound_token: str
) -> None:
    """RFC 9449 §11.1: the Host header is the client's; the service's origin is configured."""
    proof = key.proof("GET", "http://evil.example/orders", access_token=bound_token)
    headers = {**dpop(bound_token, proof), "Host": "evil.example"}
    response = await api.get("/orders", headers=headers)
    assert_refused(response, "invalid_dpop_proof", "htu does not match the request URL")
    # A proof for the configured origin passes whatever Host it comes with.
    proof = key.proof("GET", f"{order.base_url}/orders", access_token=bound_token)
    headers = {**dpop(bound_token, proof), "Host": "evil.example"}
    assert (await api.get("/orders", headers=headers)).status_code == 200


async def test_hopauth_auth_flows_end_to_end(
    auth_server: ServerThread,
    api: httpx.AsyncClient,
    issuer_http: httpx.AsyncClient,
    http: httpx.Client,
    key: DPoPKey,
) -> None:
    """What a service copies: the same key for client credentials and token exchange."""
    credentials = ClientCredentials(
        endpoint(auth_server, issuer_http, "billing-worker", key),
        audience="order",
        scopes=["orders:read"],
    )
    worker = ClientCredentialsAuth(credentials)
    for _ in range(3):  # one token, a fresh proof per request
        response = await api.post("/orders", json={"n": 1}, auth=worker)
        assert response.status_code == 200, response.text
    assert credentials.stats.misses == 1

    alice = login(http, "alice").access_token
    exchanger = TokenExchanger(endpoint(auth_server, issuer_http, "gateway", key))
    user_call = TokenExchangeAuth(exchanger, alice, audience="order", scopes=["orders:read"])
    for _ in range(3):
        response = await api.get("/orders", auth=user_call)
        assert response.status_code == 200, response.text
    assert response.json() == {"sub": claims(alice)["sub"], "jkt": key.thumbprint}
    assert exchanger.stats.misses == 1
