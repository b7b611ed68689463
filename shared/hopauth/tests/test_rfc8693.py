"""TokenExchanger and TokenExchangeAuth: cache keys, expiry, single flight, stats."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hopauth import TokenEndpoint, TokenExchangeAuth, TokenExchanger
from hopauth_support import FakeClock, FakeTokenEndpoint, MakeToken


@pytest.fixture
def exchanger(token_http: httpx.AsyncClient, clock: FakeClock) -> TokenExchanger:
    endpoint = TokenEndpoint(
        token_url="http://127.0.0.1:8001/token",
        client_id="gateway",
        client_secret="gateway-dev-secret",
        http=token_http,
    )
    return TokenExchanger(endpoint, clock=clock)


async def test_cached_per_subject_audience_and_scopes(
    exchanger: TokenExchanger, token_server: FakeTokenEndpoint, make_token: MakeToken
) -> None:
    subject = make_token()
    first = await exchanger.token_for(subject, audience="order", scopes=["orders:read"])
    again = await exchanger.token_for(subject, audience="order", scopes={"orders:read"})
    assert first == again
    assert len(token_server.requests) == 1
    assert (exchanger.stats.hits, exchanger.stats.misses) == (1, 1)
    assert exchanger.stats.hit_rate == 0.5


async def test_different_scopes_audience_subject_or_actor_exchange_again(
    exchanger: TokenExchanger, token_server: FakeTokenEndpoint, make_token: MakeToken
) -> None:
    subject, other_subject, actor = make_token(), make_token(), make_token(sub="carol")
    calls = [
        (subject, "order", ["orders:read"], None),
        (subject, "order", ["orders:read", "orders:write"], None),
        (subject, "billing", ["orders:read"], None),
        (other_subject, "order", ["orders:read"], None),
        (subject, "order", ["orders:read"], actor),
    ]
    tokens = [
        await exchanger.token_for(s, audience=a, scopes=sc, actor_token=act)
        for s, a, sc, act in calls
    ]
    assert len(set(tokens)) == 5
    assert len(token_server.requests) == 5
    assert token_server.requests[1]["scope"] == "orders:read orders:write"
    assert token_server.requests[4]["actor_token"] == actor
    assert exchanger.stats.misses == 5
    assert exchanger.stats.hits == 0


async def test_near_expiry_exchanges_again(
    exchanger: TokenExchanger,
    token_server: FakeTokenEndpoint,
    make_token: MakeToken,
    clock: FakeClock,
) -> None:
    subject = make_token()
    first = await exchanger.token_for(subject, audience="order", scopes=["orders:read"])
    clock.advance(269)
    assert await exchanger.token_for(subject, audience="order", scopes=["orders:read"]) == first
    clock.advance(1)
    assert await exchanger.token_for(subject, audience="order", scopes=["orders:read"]) != first
    assert len(token_server.requests) == 2


async def test_concurrent_same_key_single_flight(
    exchanger: TokenExchanger, token_server: FakeTokenEndpoint, make_token: MakeToken
) -> None:
    subject = make_token()
    tokens = await asyncio.gather(
        *(exchanger.token_for(subject, audience="order", scopes=["orders:read"]) for _ in range(50))
    )
    assert len(set(tokens)) == 1
    assert len(token_server.requests) == 1


async def test_cache_bounded_least_recently_used_dropped(
    token_http: httpx.AsyncClient,
    token_server: FakeTokenEndpoint,
    make_token: MakeToken,
    clock: FakeClock,
) -> None:
    endpoint = TokenEndpoint(
        token_url="http://x/token",
        client_id="gateway",
        client_secret="s3cret-value",
        http=token_http,
    )
    exchanger = TokenExchanger(endpoint, max_entries=2, clock=clock)
    a, b, c = make_token(), make_token(), make_token()
    for subject in (a, b):
        await exchanger.token_for(subject, audience="order", scopes=[])
    await exchanger.token_for(a, audience="order", scopes=[])  # a is now most recent
    await exchanger.token_for(c, audience="order", scopes=[])  # evicts b
    assert len(token_server.requests) == 3
    await exchanger.token_for(a, audience="order", scopes=[])
    assert len(token_server.requests) == 3
    await exchanger.token_for(b, audience="order", scopes=[])
    assert len(token_server.requests) == 4


async def test_subject_token_not_in_cache_keys(
    exchanger: TokenExchanger, make_token: MakeToken
) -> None:
    subject = make_token()
    await exchanger.token_for(subject, audience="order", scopes=[])
    assert subject not in repr(exchanger._cache)
    assert subject not in repr(exchanger)


async def test_auth_sets_bearer_and_does_not_retry_401(
    exchanger: TokenExchanger, token_server: FakeTokenEndpoint, make_token: MakeToken
) -> None:
    seen: list[str] = []

    def resource(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(401)

    subject = make_token()
    auth = TokenExchangeAuth(exchanger, subject, audience="inventory", scopes=["inventory:reserve"])
    async with httpx.AsyncClient(transport=httpx.MockTransport(resource), auth=auth) as client:
        response = await client.post("http://inventory/reservations", json={})
    assert response.status_code == 401
    assert len(seen) == 1
    exchanged = await exchanger.token_for(
        subject, audience="inventory", scopes=["inventory:reserve"]
    )
    assert seen == [f"Bearer {exchanged}"]
    assert token_server.requests[0]["audience"] == "inventory"
    assert subject not in repr(auth)


def test_auth_refuses_sync_clients(exchanger: TokenExchanger) -> None:
    auth = TokenExchangeAuth(exchanger, "t.t.t", audience="order", scopes=[])
    with (
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)), auth=auth) as c,
        pytest.raises(RuntimeError, match="AsyncClient"),
    ):
        c.get("http://order/x")
