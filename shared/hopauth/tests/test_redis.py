"""Redis adapters against a real valkey-server: revocation and the shared token cache."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
import redis.asyncio as redis
from fastapi import Depends, FastAPI
from hopauth import (
    AccessTokenValidator,
    ClientCredentials,
    InvalidTokenError,
    Principal,
    RevocationUnavailableError,
    StaticKeySource,
    TokenEndpoint,
    revoked_session_key,
)
from hopauth.fastapi import Requires, install_problem_handlers
from hopauth.redis_cache import RedisTokenCache
from hopauth.redis_revocation import RedisRevocationChecker
from hopauth_support import AUDIENCE, ISSUER, FakeTokenEndpoint, MakeToken, free_port
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def test_revoked_session_key_contract() -> None:
    # The auth service writes exactly this key; changing it breaks logout.
    assert revoked_session_key("abc-123") == "hopauth:revoked-sid:abc-123"


@pytest.fixture
async def unreachable_redis() -> AsyncIterator[redis.Redis]:
    # Nothing listens on this port. No retries: the default backoff only slows the test.
    client = redis.Redis(
        host="127.0.0.1",
        port=free_port(),
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )
    yield client
    await client.aclose()


async def test_revoked_session_refused_by_validator(
    redis_client: redis.Redis, static_keys: StaticKeySource, make_token: MakeToken
) -> None:
    validator = AccessTokenValidator(
        issuer=ISSUER,
        audience=AUDIENCE,
        keys=static_keys,
        revocation=RedisRevocationChecker(redis_client),
    )
    token = make_token(sid="sess-revoked")
    assert (await validator.validate(token)).session_id == "sess-revoked"

    await redis_client.set(revoked_session_key("sess-revoked"), "1", ex=60)
    with pytest.raises(InvalidTokenError) as caught:
        await validator.validate(token)
    assert caught.value.reason == "session revoked"
    # Other sessions are unaffected.
    assert (await validator.validate(make_token(sid="sess-live"))).session_id == "sess-live"


async def test_token_without_sid_is_not_revocable(redis_client: redis.Redis) -> None:
    from hopauth import Principal
    from hopauth_support import default_claims

    checker = RedisRevocationChecker(redis_client)
    principal = Principal.from_claims(default_claims(sid=None))
    assert await checker.is_revoked(principal) is False
    revoked = Principal.from_claims(default_claims(sid="s"))
    await redis_client.set(revoked_session_key("s"), "1")
    assert await checker.is_revoked(revoked) is True


async def test_revocation_fails_closed_when_redis_unreachable(
    unreachable_redis: redis.Redis, static_keys: StaticKeySource, make_token: MakeToken
) -> None:
    validator = AccessTokenValidator(
        issuer=ISSUER,
        audience=AUDIENCE,
        keys=static_keys,
        revocation=RedisRevocationChecker(unreachable_redis),
    )
    token = make_token(sid="sess-1")
    with pytest.raises(RevocationUnavailableError) as caught:
        await validator.validate(token)
    assert caught.value.reason == "revocation status unavailable"
    assert token not in repr(caught.value)


async def test_at_the_adapter_an_unreachable_store_is_a_503_not_a_401(
    unreachable_redis: redis.Redis, static_keys: StaticKeySource, make_token: MakeToken
) -> None:
    # A 401 would tell the client its token is bad: it would drop a good one.
    app = FastAPI()
    install_problem_handlers(app)
    app.state.hopauth_validator = AccessTokenValidator(
        issuer=ISSUER,
        audience=AUDIENCE,
        keys=static_keys,
        revocation=RedisRevocationChecker(unreachable_redis),
    )

    @app.get("/orders")
    async def orders(_: Annotated[Principal, Depends(Requires())]) -> dict[str, str]:
        return {}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        token = make_token(sid="sess-1")
        response = await client.get("/orders", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("revocation-unavailable")
    assert "www-authenticate" not in response.headers
    assert token not in response.text


def make_endpoint(http: httpx.AsyncClient) -> TokenEndpoint:
    return TokenEndpoint(
        token_url="http://127.0.0.1:8001/token",
        client_id="billing-worker",
        client_secret="billing-worker-dev-secret",
        http=http,
    )


async def test_replicas_share_one_token_through_redis(
    redis_client: redis.Redis, token_http: httpx.AsyncClient, token_server: FakeTokenEndpoint
) -> None:
    replica_a = ClientCredentials(
        make_endpoint(token_http),
        audience="order",
        scopes=["orders:read"],
        cache=RedisTokenCache(redis_client),
    )
    replica_b = ClientCredentials(
        make_endpoint(token_http),
        audience="order",
        scopes=["orders:read"],
        cache=RedisTokenCache(redis_client),
    )
    token = await replica_a.token()
    assert await replica_b.token() == token
    assert len(token_server.requests) == 1

    keys = [k.decode() async for k in redis_client.scan_iter("hopauth:cc:*")]
    assert len(keys) == 1
    ttl = await redis_client.pttl(keys[0])
    assert 290_000 < ttl <= 300_000
    stored = json.loads(await redis_client.get(keys[0]))
    assert stored["access_token"] == token
    assert stored["expires_at"] == pytest.approx(time.time() + 300, abs=5)

    # A 401 at one replica drops the shared token for all.
    await replica_b.invalidate(token)
    assert [k async for k in redis_client.scan_iter("hopauth:cc:*")] == []
    assert await replica_a.token() == token  # replica a still holds its local copy
    fresh = await replica_b.token()
    assert fresh != token
    assert len(token_server.requests) == 2


async def test_expired_cache_entry_not_written(redis_client: redis.Redis) -> None:
    cache = RedisTokenCache(redis_client)
    await cache.set("k", "tok", time.time() - 1)
    assert await cache.get("k") is None
    await cache.set("k", "tok", time.time() + 60)
    assert (await cache.get("k") or ("", 0))[0] == "tok"


async def test_malformed_cache_value_is_a_miss(redis_client: redis.Redis) -> None:
    await redis_client.set("hopauth:cc:k", "not json")
    assert await RedisTokenCache(redis_client).get("k") is None
    await redis_client.set("hopauth:cc:k", json.dumps({"access_token": 1, "expires_at": 1}))
    assert await RedisTokenCache(redis_client).get("k") is None


async def test_unreachable_cache_falls_back_to_token_endpoint(
    unreachable_redis: redis.Redis, token_http: httpx.AsyncClient, token_server: FakeTokenEndpoint
) -> None:
    credentials = ClientCredentials(
        make_endpoint(token_http),
        audience="order",
        scopes=["orders:read"],
        cache=RedisTokenCache(unreachable_redis),
    )
    assert (await credentials.token()).startswith("tok-")
    assert len(token_server.requests) == 1
