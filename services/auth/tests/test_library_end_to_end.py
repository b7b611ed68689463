"""hopauth's sending and receiving sides against the real issuer, over real HTTP.

A tiny resource server built only from hopauth (as a service would copy it)
stands in for "order"; the calling side uses TokenExchangeAuth and
ClientCredentialsAuth exactly as the services will.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
import redis.asyncio as aioredis
from auth_testing import ServerThread, ValkeyServer, claims, login
from fastapi import Depends, FastAPI
from hopauth import (
    ClientCredentials,
    ClientCredentialsAuth,
    Principal,
    TokenEndpoint,
    TokenExchangeAuth,
    TokenExchanger,
)
from hopauth.fastapi import Requires
from hopauth.redis_cache import RedisTokenCache
from resource_testing import resource_app, token_endpoint


def order_service(issuer: str, redis_url: str) -> FastAPI:
    """Bearer tokens for "order", each checked against the revoked logins in valkey."""
    app = resource_app(issuer, redis_url, "order", revocation=True)

    @app.get("/orders")
    async def orders(
        principal: Annotated[Principal, Depends(Requires("orders:read", callers={"gateway"}))],
    ) -> dict[str, Any]:
        return {"sub": principal.subject, "caller": principal.caller, "actors": principal.actors}

    @app.get("/internal/orders")
    async def internal(
        principal: Annotated[
            Principal, Depends(Requires("orders:read", callers={"billing-worker"}))
        ],
    ) -> dict[str, Any]:
        return {"sub": principal.subject, "service": principal.is_service}

    return app


@pytest.fixture(scope="module")
def order(auth_server: ServerThread, valkey: ValkeyServer) -> Iterator[ServerThread]:
    with ServerThread(order_service(auth_server.base_url, valkey.url)) as server:
        yield server


def endpoint(auth_server: ServerThread, http: httpx.AsyncClient, client_id: str) -> TokenEndpoint:
    return token_endpoint(auth_server.base_url, http, client_id)


async def test_a_user_call_hops_with_an_exchanged_token(
    auth_server: ServerThread, order: ServerThread, http: httpx.Client
) -> None:
    alice = login(http, "alice").access_token
    async with (
        httpx.AsyncClient() as issuer_http,
        httpx.AsyncClient(base_url=order.base_url) as api,
    ):
        exchanger = TokenExchanger(endpoint(auth_server, issuer_http, "gateway"))
        auth = TokenExchangeAuth(exchanger, alice, audience="order", scopes=["orders:read"])
        for _ in range(5):
            response = await api.get("/orders", auth=auth)
            assert response.status_code == 200, response.text
        assert response.json() == {
            "sub": claims(alice)["sub"],
            "caller": "gateway",
            "actors": ["gateway"],
        }
        # One exchange, four cache hits.
        assert (exchanger.stats.misses, exchanger.stats.hits) == (1, 4)

        # The user's own token is refused at order: wrong audience.
        direct = await api.get("/orders", headers={"Authorization": f"Bearer {alice}"})
        assert direct.status_code == 401
        assert 'error="invalid_token"' in direct.headers["www-authenticate"]

        # An exchanged token presented by the wrong caller is refused by the callers rule.
        refused = await api.get("/internal/orders", auth=auth)
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"


async def test_workers_share_one_client_credentials_token_through_redis(
    auth_server: ServerThread, order: ServerThread, valkey: ValkeyServer
) -> None:
    token_requests: list[httpx.Request] = []

    async def count(request: httpx.Request) -> None:
        token_requests.append(request)

    async with (
        httpx.AsyncClient(event_hooks={"request": [count]}) as issuer_http,
        httpx.AsyncClient(base_url=order.base_url) as api,
        aioredis.Redis.from_url(valkey.url) as store,
    ):
        await store.flushdb()
        replicas = [
            ClientCredentials(
                endpoint(auth_server, issuer_http, "billing-worker"),
                audience="order",
                scopes=["orders:read"],
                cache=RedisTokenCache(store),
            )
            for _ in range(2)
        ]
        # 100 concurrent callers on the first replica: one token request.
        tokens = await asyncio.gather(*(replicas[0].token() for _ in range(100)))
        assert len(set(tokens)) == 1
        assert len(token_requests) == 1
        # The second replica finds it in Redis and asks the issuer for nothing.
        assert await replicas[1].token() == tokens[0]
        assert len(token_requests) == 1

        response = await api.get("/internal/orders", auth=ClientCredentialsAuth(replicas[1]))
        assert response.status_code == 200, response.text
        assert response.json() == {"sub": "billing-worker", "service": True}


async def test_support_staff_act_for_a_customer_until_their_login_ends(
    auth_server: ServerThread, order: ServerThread, http: httpx.Client
) -> None:
    """TokenEndpoint.delegate: carol's token as actor, alice by id; revoking carol ends it."""
    alice_id = claims(login(http, "alice").access_token)["sub"]
    carol = login(http, "carol")
    async with (
        httpx.AsyncClient() as issuer_http,
        httpx.AsyncClient(base_url=order.base_url) as api,
    ):
        delegated = await endpoint(auth_server, issuer_http, "gateway").delegate(
            actor_token=carol.access_token,
            requested_subject=alice_id,
            audience="order",
            scopes=["orders:read"],
        )
        assert delegated.scope == frozenset({"orders:read"})
        headers = {"Authorization": f"Bearer {delegated.access_token}"}
        response = await api.get("/orders", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "sub": alice_id,
            "caller": "gateway",
            "actors": ["gateway", claims(carol.access_token)["sub"]],
        }

        # carol signs out: the token made for alice's order dies with her login.
        revoked = http.post("/revoke", data={"token": carol.refresh_token, "client_id": "web"})
        assert revoked.is_success
        refused = await api.get("/orders", headers=headers)
        assert refused.status_code == 401, refused.text
