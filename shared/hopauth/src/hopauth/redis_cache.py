"""A :class:`~hopauth.client_credentials.TokenCache` in Redis (needs the ``redis`` extra).

Replicas of a service share one client-credentials token instead of each
asking the issuer for its own. The tokens are bearer credentials: use a Redis
that only the service's replicas can reach.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import redis.asyncio as redis
from redis.exceptions import RedisError

__all__ = ["KEY_PREFIX", "RedisTokenCache"]

logger = logging.getLogger(__name__)

#: Every key this cache writes starts with this prefix.
KEY_PREFIX = "hopauth:cc:"


class RedisTokenCache:
    """Keeps tokens under ``hopauth:cc:<key>`` as JSON, expiring with the token.

    The value is ``{"access_token": ..., "expires_at": <unix seconds>}`` and
    the Redis TTL is the time left, so Redis drops the token when it expires.
    A cache is an optimisation: when Redis fails, reads miss and writes are
    skipped (with a warning), and the caller asks the issuer instead.
    """

    def __init__(self, client: redis.Redis, *, clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._clock = clock

    def __repr__(self) -> str:
        return f"RedisTokenCache({self._redis!r})"

    async def get(self, key: str) -> tuple[str, float] | None:
        try:
            raw = await self._redis.get(KEY_PREFIX + key)
        except (RedisError, OSError) as exc:
            logger.warning("token cache read failed: %s", type(exc).__name__)
            return None
        if raw is None:
            return None
        try:
            value = json.loads(raw)
            token, expires_at = value["access_token"], value["expires_at"]
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(token, str) or not isinstance(expires_at, int | float):
            return None
        return token, float(expires_at)

    async def set(self, key: str, token: str, expires_at: float) -> None:
        ttl_ms = int((expires_at - self._clock()) * 1000)
        if ttl_ms <= 0:
            return
        value = json.dumps({"access_token": token, "expires_at": expires_at})
        try:
            await self._redis.set(KEY_PREFIX + key, value, px=ttl_ms)
        except (RedisError, OSError) as exc:
            logger.warning("token cache write failed: %s", type(exc).__name__)

    async def delete(self, key: str) -> None:
        try:
            await self._redis.delete(KEY_PREFIX + key)
        except (RedisError, OSError) as exc:
            logger.warning("token cache delete failed: %s", type(exc).__name__)
