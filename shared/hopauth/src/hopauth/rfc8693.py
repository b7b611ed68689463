"""Token exchange on the sending side (RFC 8693).

A service that received a user's token exchanges it for a token made for the
next hop alone (``aud`` = that service, ``act`` = us), instead of forwarding
the user's token. :class:`TokenExchanger` caches the results;
:class:`TokenExchangeAuth` plugs it into an ``httpx.AsyncClient``.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from dataclasses import dataclass

import httpx

from ._cache_stats import CacheStats
from ._singleflight import SingleFlight
from .rfc9449 import DPoPKey, authorize_dpop, resource_nonce
from .token_client import TokenEndpoint

__all__ = ["CacheStats", "TokenExchangeAuth", "TokenExchanger"]

_CacheKey = tuple[str, str, frozenset[str], str | None]


@dataclass(frozen=True, slots=True)
class _Entry:
    access_token: str
    refresh_at: float  # on the exchanger's clock


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def refresh_point(now: float, expires_in: float, refresh_margin: float) -> float:
    """When to stop reusing a token: ``refresh_margin`` before it expires.

    The margin is capped at half the lifetime, so a token shorter-lived than
    the margin is still reused for a while rather than never.
    """
    return now + expires_in - min(refresh_margin, expires_in / 2)


class TokenExchanger:
    """Exchanges subject tokens (RFC 8693 §2.1), caching each result until near expiry.

    The cache key is (SHA-256 of the subject token, audience, scopes, SHA-256
    of the actor token). Hashing the whole token rather than trusting its
    unverified ``jti`` means a forged token that copies someone's ``jti`` can
    never be handed that someone's exchanged token; a token and its ``jti``
    are one-to-one, so the hit rate is the same. Concurrent requests for one
    key share one exchange. The cache holds at most ``max_entries`` tokens and
    drops the least recently used first. ``clock`` is monotonic seconds.

    When the endpoint has a DPoP key, every cached token is bound to that one
    key (RFC 9449): the cache lives in this process with the key, so the key
    need not be part of the cache key.
    """

    def __init__(
        self,
        endpoint: TokenEndpoint,
        *,
        refresh_margin: float = 30.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._endpoint = endpoint
        self._refresh_margin = refresh_margin
        self._max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[_CacheKey, _Entry] = OrderedDict()
        self._flight: SingleFlight[_CacheKey, str] = SingleFlight()
        self.stats = CacheStats()

    def __repr__(self) -> str:
        return f"TokenExchanger({self._endpoint!r}, entries={len(self._cache)})"

    @property
    def endpoint(self) -> TokenEndpoint:
        """The token endpoint it exchanges at, for the calls it does not cache."""
        return self._endpoint

    @property
    def dpop_key(self) -> DPoPKey | None:
        """The endpoint's DPoP key: exchanged tokens are bound to it (RFC 9449 §5)."""
        return self._endpoint.dpop_key

    async def token_for(
        self,
        subject_token: str,
        *,
        audience: str,
        scopes: Iterable[str],
        actor_token: str | None = None,
    ) -> str:
        """An access token for ``audience`` acting for ``subject_token``'s subject."""
        requested = frozenset(scopes)
        key: _CacheKey = (
            _fingerprint(subject_token),
            audience,
            requested,
            _fingerprint(actor_token) if actor_token is not None else None,
        )
        entry = self._cache.get(key)
        if entry is not None:
            if self._clock() < entry.refresh_at:
                self._cache.move_to_end(key)
                self.stats.hits += 1
                return entry.access_token
            del self._cache[key]
        self.stats.misses += 1

        async def exchange() -> str:
            response = await self._endpoint.exchange(
                subject_token=subject_token,
                audience=audience,
                scopes=requested,
                actor_token=actor_token,
            )
            self._store(
                key,
                _Entry(
                    response.access_token,
                    refresh_point(self._clock(), response.expires_in, self._refresh_margin),
                ),
            )
            return response.access_token

        return await self._flight.do(key, exchange)

    def _store(self, key: _CacheKey, entry: _Entry) -> None:
        self._cache[key] = entry
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)


class TokenExchangeAuth(httpx.Auth):
    """httpx auth that sends an exchanged token: ``Authorization: Bearer <exchanged>``.

    When the exchanger's endpoint has a DPoP key, the token is bound to it and
    is sent as ``Authorization: DPoP <exchanged>`` with a fresh proof for this
    request's method and URL (RFC 9449 §7.1); a 401 asking for a nonce
    (``use_dpop_nonce``, §9) is retried once with a proof carrying it.

    Build one per incoming request (it holds that request's subject token).
    Any other 401 from the resource server is returned as is: exchanging the
    same subject token again would give the same answer. Async clients only.
    """

    def __init__(
        self,
        exchanger: TokenExchanger,
        subject_token: str,
        *,
        audience: str,
        scopes: Iterable[str],
        actor_token: str | None = None,
    ) -> None:
        self._exchanger = exchanger
        self._subject_token = subject_token
        self._audience = audience
        self._scopes = frozenset(scopes)
        self._actor_token = actor_token
        # The nonce retry re-sends the body, so httpx must buffer it (DPoP only).
        self.requires_request_body = exchanger.dpop_key is not None

    def __repr__(self) -> str:
        return f"TokenExchangeAuth(audience={self._audience!r}, scopes={sorted(self._scopes)!r})"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("TokenExchangeAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._exchanger.token_for(
            self._subject_token,
            audience=self._audience,
            scopes=self._scopes,
            actor_token=self._actor_token,
        )
        key = self._exchanger.dpop_key
        if key is None:
            request.headers["Authorization"] = f"Bearer {token}"
            yield request
            return
        authorize_dpop(request, token, key)
        response = yield request
        nonce = resource_nonce(response)
        if nonce is not None:
            authorize_dpop(request, token, key, nonce=nonce)
            yield request
