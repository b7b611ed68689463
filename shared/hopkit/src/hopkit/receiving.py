"""The receiving side of a service's auth, built the same way in every service.

Each service validates access tokens for its own audience with hopauth
(RFC 9068), refuses tokens of revoked logins through Redis, and in the
vulnerable teaching mode also accepts every other audience
(:mod:`hopkit.forwarding`). These two functions hold that wiring once.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import redis.asyncio as redis
from hopauth import AccessTokenValidator, KeySource
from hopauth.redis_revocation import RedisRevocationChecker

from . import forwarding
from .settings import CommonSettings

__all__ = ["access_token_validator", "connect_redis"]


def connect_redis(url: str | None, resources: AsyncExitStack) -> redis.Redis | None:
    """The service's Redis client, closed with ``resources``; None without a URL.

    Short timeouts: a slow Redis must fail a check quickly (revocation fails
    closed, the rate limit open) rather than stall every request.
    """
    if not url:
        return None
    store = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    resources.push_async_callback(store.aclose)
    return store


def access_token_validator(
    settings: CommonSettings, audience: str, keys: KeySource, store: redis.Redis | None
) -> AccessTokenValidator:
    """Tokens for ``audience`` from our issuer, refused once their login is revoked (with Redis).

    In forward mode every audience of the system is accepted too
    (:func:`hopkit.forwarding.extra_audiences`); in exchange mode none is.
    """
    return AccessTokenValidator(
        issuer=settings.issuer,
        audience=audience,
        keys=keys,
        revocation=RedisRevocationChecker(store) if store is not None else None,
        extra_audiences=forwarding.extra_audiences(settings.propagation),
    )
