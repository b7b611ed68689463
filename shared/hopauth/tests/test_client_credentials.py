"""ClientCredentials and ClientCredentialsAuth: caching, single flight, refresh, retry."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hopauth import (
    ClientCredentials,
    ClientCredentialsAuth,
    MemoryTokenCache,
    TokenEndpoint,
    TokenRequestError,
)
from hopauth.client_credentials import token_cache_key
from hopauth_support import FakeClock, FakeTokenEndpoint


@pytest.fixture
def endpoint(token_http: httpx.AsyncClient) -> TokenEndpoint:
    return TokenEndpoint(
        token_url="http://127.0.0.1:8001/token",
        client_id="order",
        client_secret="order-dev-secret",
        http=token_http,
    )


@pytest.fixture
def credentials(endpoint: TokenEndpoint, clock: FakeClock) -> ClientCredentials:
    return ClientCredentials(
        endpoint,
        audience="inventory",
        scopes=["inventory:release"],
        cache=MemoryTokenCache(clock),
        clock=clock,
    )


async def test_hundred_concurrent_calls_make_one_request(
    credentials: ClientCredentials, token_server: FakeTokenEndpoint
) -> None:
    tokens = await asyncio.gather(*(credentials.token() for _ in range(100)))
    assert len(token_server.requests) == 1
    assert len(set(tokens)) == 1
    assert token_server.requests[0] == {
        "grant_type": "client_credentials",
        "scope": "inventory:release",
        "audience": "inventory",
    }


async def test_cached_until_refresh_margin(
    credentials: ClientCredentials, token_server: FakeTokenEndpoint, clock: FakeClock
) -> None:
    first = await credentials.token()
    clock.advance(269)  # expires_in 300, margin 30
    assert await credentials.token() == first
    assert len(token_server.requests) == 1
    clock.advance(1)
    second = await credentials.token()
    assert second != first
    assert len(token_server.requests) == 2
    assert (credentials.stats.hits, credentials.stats.misses) == (1, 2)


async def test_short_lived_token_still_reused(
    credentials: ClientCredentials, token_server: FakeTokenEndpoint, clock: FakeClock
) -> None:
    # Lifetime below the margin: reuse for half of it instead of never.
    token_server.expires_in = 20
    first = await credentials.token()
    clock.advance(9)
    assert await credentials.token() == first
    clock.advance(1)
    assert await credentials.token() != first


async def test_invalidate_forces_new_token(
    credentials: ClientCredentials, token_server: FakeTokenEndpoint
) -> None:
    first = await credentials.token()
    await credentials.invalidate("some-other-token")  # not ours: ignored
    assert await credentials.token() == first
    await credentials.invalidate()
    assert await credentials.token() != first
    assert len(token_server.requests) == 2


async def test_failure_reaches_every_waiter_and_next_call_retries(
    credentials: ClientCredentials, token_server: FakeTokenEndpoint
) -> None:
    token_server.refuse = {"error": "invalid_client"}
    results = await asyncio.gather(
        *(credentials.token() for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, TokenRequestError) for r in results)
    assert len(token_server.requests) == 1
    token_server.refuse = None
    assert (await credentials.token()).startswith("tok-")


def test_cache_key_separates_clients_audiences_and_scopes() -> None:
    assert token_cache_key("a", "b", ["y", "x", "x"]) == token_cache_key("a", "b", ["x", "y"])
    keys = {
        token_cache_key("a", "b", ["x"]),
        token_cache_key("a", None, ["x"]),
        token_cache_key("a", "b", ["x", "y"]),
        token_cache_key("a b", "", ["x"]),
        token_cache_key("a", "b x", []),
    }
    assert len(keys) == 5


class ResourceServer:
    """Refuses tokens in ``revoked`` (or all, with ``refuse_all``); records requests."""

    def __init__(self, revoked: set[str] | None = None, *, refuse_all: bool = False) -> None:
        self.revoked = revoked or set()
        self.refuse_all = refuse_all
        self.seen: list[tuple[str, bytes]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.seen.append((token, request.content))
        refused = self.refuse_all or not token or token in self.revoked
        return httpx.Response(401 if refused else 200)


async def test_auth_retries_once_after_401(
    credentials: ClientCredentials, token_server: FakeTokenEndpoint
) -> None:
    stale = await credentials.token()
    resource = ResourceServer(revoked={stale})
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(resource.handler), auth=ClientCredentialsAuth(credentials)
    ) as client:
        response = await client.post("http://inventory/reservations/1/release", json={"x": 1})
    assert response.status_code == 200
    assert len(resource.seen) == 2
    assert resource.seen[0][0] == stale
    assert resource.seen[1][0] not in ("", stale)
    assert resource.seen[1][1] == resource.seen[0][1] == b'{"x":1}'  # body sent again
    assert len(token_server.requests) == 2


async def test_auth_gives_up_after_second_401(
    credentials: ClientCredentials, token_server: FakeTokenEndpoint
) -> None:
    resource = ResourceServer(refuse_all=True)
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(resource.handler), auth=ClientCredentialsAuth(credentials)
    ) as client:
        response = await client.get("http://inventory/x")
    assert response.status_code == 401
    assert len(resource.seen) == 2
    assert len(token_server.requests) == 2


def test_auth_refuses_sync_clients(credentials: ClientCredentials) -> None:
    with (
        httpx.Client(
            transport=httpx.MockTransport(lambda r: httpx.Response(200)),
            auth=ClientCredentialsAuth(credentials),
        ) as client,
        pytest.raises(RuntimeError, match="AsyncClient"),
    ):
        client.get("http://inventory/x")
