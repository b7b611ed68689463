"""RedisReplayCache against a real valkey-server: once per jti, shared, expiring, fail-closed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as redis
from hopauth import DPoPKey, DPoPProofValidator, InvalidDPoPProofError
from hopauth.redis_replay import DPOP_JTI_PREFIX, RedisReplayCache
from hopkit.testing import ValkeyServer
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

URL = "http://127.0.0.1:8002/orders"


async def test_first_use_then_replay(redis_client: redis.Redis) -> None:
    cache = RedisReplayCache(redis_client)
    assert await cache.first_use("jti-1", 65) is True
    assert await cache.first_use("jti-1", 65) is False
    assert await cache.first_use("jti-2", 65) is True
    assert await redis_client.get(DPOP_JTI_PREFIX + "jti-1") == b"1"
    ttl = await redis_client.ttl(DPOP_JTI_PREFIX + "jti-1")
    assert 60 < ttl <= 65


async def test_entry_expires(redis_client: redis.Redis) -> None:
    cache = RedisReplayCache(redis_client, prefix="test:jti:")
    assert await cache.first_use("short", 0.2) is True  # rounded up to Redis' 1 s minimum
    # In ms: TTL rounds to whole seconds, so half a second's stall would read 0.
    assert 200 < await redis_client.pttl("test:jti:short") <= 1000
    await asyncio.sleep(1.2)
    assert await cache.first_use("short", 1) is True


async def test_concurrent_replicas_accept_a_proof_once(redis_client: redis.Redis) -> None:
    # Two replicas (validators) sharing one Redis get the same proof at the same moment.
    replicas = [DPoPProofValidator(replay_cache=RedisReplayCache(redis_client)) for _ in range(4)]
    proof = DPoPKey.generate().proof("GET", URL)
    results = await asyncio.gather(
        *(r.validate(proof, method="GET", url=URL) for r in replicas), return_exceptions=True
    )
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, InvalidDPoPProofError)]
    assert len(accepted) == 1
    assert len(refused) == 3
    assert {r.reason for r in refused} == {"proof replayed (jti already used)"}


async def test_fails_closed_when_redis_goes_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = ValkeyServer(tmp_path)
    store = redis.Redis.from_url(server.url, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
    try:
        validator = DPoPProofValidator(replay_cache=RedisReplayCache(store))
        key = DPoPKey.generate()
        await validator.validate(key.proof("GET", URL), method="GET", url=URL)
        server.stop()
        proof = key.proof("GET", URL)
        with caplog.at_level("WARNING"), pytest.raises(InvalidDPoPProofError) as caught:
            await validator.validate(proof, method="GET", url=URL)
        assert caught.value.reason == "replay check unavailable"
        assert any("refusing the proof" in r.getMessage() for r in caplog.records)
        assert all(proof not in r.getMessage() for r in caplog.records)
    finally:
        await store.aclose()
        server.stop()


def test_repr_shows_the_prefix(redis_client: redis.Redis) -> None:
    assert "hopauth:dpop-jti:" in repr(RedisReplayCache(redis_client))
