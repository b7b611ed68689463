"""Client credentials on the sending side (RFC 6749 §4.4), for calls with no user.

Workers and scheduled jobs use it; so does any call made on the service's own
behalf. :class:`ClientCredentials` keeps one token fresh; the
:class:`TokenCache` it uses can be shared between replicas through Redis
(:class:`hopauth.redis_cache.RedisTokenCache`).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from typing import Protocol

import httpx

from ._cache_stats import CacheStats
from ._singleflight import SingleFlight
from .rfc8693 import refresh_point
from .rfc9449 import DPoPKey, authorize_dpop, resource_nonce
from .token_client import TokenEndpoint

__all__ = [
    "ClientCredentials",
    "ClientCredentialsAuth",
    "MemoryTokenCache",
    "TokenCache",
    "token_cache_key",
]


class TokenCache(Protocol):
    """Where client-credentials tokens are kept; expiry times are Unix seconds."""

    async def get(self, key: str) -> tuple[str, float] | None:
        """The cached ``(access_token, expires_at)``, or None."""
        ...

    async def set(self, key: str, token: str, expires_at: float) -> None:
        """Keep ``token`` until ``expires_at`` (Unix seconds)."""
        ...

    async def delete(self, key: str) -> None:
        """Forget the token under ``key`` (it was refused)."""
        ...


class MemoryTokenCache:
    """A per-process :class:`TokenCache` (the default)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"MemoryTokenCache(entries={len(self._tokens)})"

    async def get(self, key: str) -> tuple[str, float] | None:
        found = self._tokens.get(key)
        if found is not None and found[1] <= self._clock():
            del self._tokens[key]
            return None
        return found

    async def set(self, key: str, token: str, expires_at: float) -> None:
        self._tokens[key] = (token, expires_at)

    async def delete(self, key: str) -> None:
        self._tokens.pop(key, None)


def token_cache_key(
    client_id: str, audience: str | None, scopes: Iterable[str], jkt: str | None = None
) -> str:
    """Cache key of a token: client, audience, sorted scopes and DPoP key, JSON-encoded.

    JSON keeps the parts apart, so no choice of names makes two different
    requests share a key (and so a token). ``jkt``, the thumbprint of the
    DPoP key a token is bound to (RFC 9449 §6.1), is part of the key when
    given: a replica sharing the cache cannot use a token bound to another
    replica's key, so each key gets its own entry.
    """
    parts: list[object] = [client_id, audience, sorted(set(scopes))]
    if jkt is not None:
        parts.append(jkt)
    return json.dumps(parts, separators=(",", ":"))


class ClientCredentials:
    """One client-credentials token, kept fresh.

    :meth:`token` returns the cached token until ``refresh_margin`` seconds
    before it expires. Concurrent callers in one process share one token
    request. Replicas sharing a Redis :class:`TokenCache` share one token
    (two replicas missing at the same moment may each fetch one; both work).
    ``clock`` is wall-clock Unix seconds, the time base of the cache.
    """

    def __init__(
        self,
        endpoint: TokenEndpoint,
        *,
        audience: str | None,
        scopes: Iterable[str],
        cache: TokenCache | None = None,
        refresh_margin: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._endpoint = endpoint
        self._audience = audience
        self._scopes = frozenset(scopes)
        self._cache: TokenCache = cache if cache is not None else MemoryTokenCache(clock)
        self._refresh_margin = refresh_margin
        self._clock = clock
        dpop_key = endpoint.dpop_key
        self._key = token_cache_key(
            endpoint.client_id,
            audience,
            self._scopes,
            dpop_key.thumbprint if dpop_key is not None else None,
        )
        self._flight: SingleFlight[None, str] = SingleFlight()
        # A local copy spares a cache round trip (Redis) on every call.
        self._token: str | None = None
        self._refresh_at = 0.0
        self.stats = CacheStats()

    def __repr__(self) -> str:
        return (
            f"ClientCredentials(client_id={self._endpoint.client_id!r}, "
            f"audience={self._audience!r}, scopes={sorted(self._scopes)!r})"
        )

    @property
    def dpop_key(self) -> DPoPKey | None:
        """The endpoint's DPoP key: the tokens are bound to it (RFC 9449 §5)."""
        return self._endpoint.dpop_key

    async def token(self) -> str:
        """A valid access token for the configured audience and scopes."""
        if self._token is not None and self._clock() < self._refresh_at:
            self.stats.hits += 1
            return self._token
        self.stats.misses += 1
        return await self._flight.do(None, self._obtain)

    async def invalidate(self, token: str | None = None) -> None:
        """Drop the cached token, here and in the shared cache.

        With ``token``, only if that is still the cached one: when many
        requests fail with one stale token, the first invalidation must not be
        followed by others that throw away its fresh replacement.
        """
        if token is not None and token != self._token:
            return
        self._token = None
        self._refresh_at = 0.0
        await self._cache.delete(self._key)

    async def _obtain(self) -> str:
        cached = await self._cache.get(self._key)
        if cached is not None:
            token, expires_at = cached
            if self._clock() < expires_at - self._refresh_margin:
                self._token, self._refresh_at = token, expires_at - self._refresh_margin
                return token
        response = await self._endpoint.client_credentials(
            audience=self._audience, scopes=self._scopes
        )
        now = self._clock()
        expires_at = now + response.expires_in
        await self._cache.set(self._key, response.access_token, expires_at)
        self._token = response.access_token
        self._refresh_at = refresh_point(now, response.expires_in, self._refresh_margin)
        return response.access_token


class ClientCredentialsAuth(httpx.Auth):
    """httpx auth that sends a client-credentials token.

    On a 401 from the resource server the token is invalidated and the
    request retried once with a fresh one (the token may have been revoked,
    or the issuer's keys rotated); a second 401 is returned as is.

    When the endpoint has a DPoP key, the token is sent as ``Authorization:
    DPoP <token>`` with a fresh proof for each attempt (RFC 9449 §7.1); a 401
    asking for a nonce (``use_dpop_nonce``, §9) is first retried once with the
    same token and a proof carrying the nonce. Async clients only.
    """

    # The retry re-sends the body, so httpx must buffer it.
    requires_request_body = True

    def __init__(self, credentials: ClientCredentials) -> None:
        self._credentials = credentials

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth({self._credentials!r})"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("ClientCredentialsAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        key = self._credentials.dpop_key
        nonce: str | None = None

        def authorize(token: str) -> None:
            if key is None:
                request.headers["Authorization"] = f"Bearer {token}"
            else:
                authorize_dpop(request, token, key, nonce=nonce)

        token = await self._credentials.token()
        authorize(token)
        response = yield request
        if key is not None and (nonce := resource_nonce(response)) is not None:
            authorize(token)
            response = yield request
        if response.status_code == 401:
            await self._credentials.invalidate(token)
            token = await self._credentials.token()
            authorize(token)
            yield request
