"""Where verification keys come from: a pinned JWK Set or the issuer's ``jwks_uri``.

JWK and JWK Set format: RFC 7517 §4, §5. Discovery: RFC 8414 §3.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx
import jwt

from ._singleflight import SingleFlight
from .errors import HopAuthError, InvalidTokenError

__all__ = ["JWKSCache", "KeySource", "StaticKeySource", "parse_jwks"]

logger = logging.getLogger(__name__)


class KeySource(Protocol):
    """Resolves a JWS ``kid`` (RFC 7515 §4.1.4) to a verification key."""

    async def get_key(self, kid: str) -> jwt.PyJWK:
        """Return the key for ``kid``; raise ``InvalidTokenError("unknown key")`` if absent."""
        ...


def parse_jwks(jwks: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    """Turn a JWK Set (RFC 7517 §5) into verification keys by ``kid``.

    Keeps only keys with a ``kid`` whose ``use`` (§4.2) is absent or ``sig``.
    Symmetric (``kty: oct``) keys are dropped: an issuer never publishes a
    secret, and accepting one would let anybody who read the set mint tokens.
    Keys PyJWT cannot load are skipped with a warning, so one odd key does not
    take the whole set down. Each key is parsed once here, never per token.
    """
    raw_keys = jwks.get("keys")
    if not isinstance(raw_keys, list):
        raise HopAuthError("JWK Set has no keys array")
    keys: dict[str, jwt.PyJWK] = {}
    for raw in raw_keys:
        if not isinstance(raw, dict):
            continue
        kid = raw.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        if raw.get("use", "sig") != "sig" or raw.get("kty") == "oct":
            continue
        try:
            keys[kid] = jwt.PyJWK(raw)
        except jwt.PyJWTError as exc:
            logger.warning("skipping unusable JWK kid=%s: %s", kid, type(exc).__name__)
    return keys


class StaticKeySource:
    """A fixed JWK Set: for tests, and for services that pin the issuer's keys."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = parse_jwks(jwks)

    async def get_key(self, kid: str) -> jwt.PyJWK:
        try:
            return self._keys[kid]
        except KeyError:
            raise InvalidTokenError("unknown key") from None


class JWKSCache:
    """The issuer's signing keys, found through its metadata and kept fresh.

    * Reads the authorization server metadata at ``issuer + discovery_path``
      and refuses it unless its ``issuer`` equals ours exactly (RFC 8414 §3.3),
      then fetches ``jwks_uri``.
    * Refreshes the set every ``ttl`` seconds. If a refresh fails, the keys
      already held are kept and served (with a warning): a brief outage of the
      issuer must not take every resource server down with it.
    * An unknown ``kid`` triggers an immediate refetch, so a key rotated in at
      the issuer is picked up by the first token that uses it. At most one
      such refetch runs per ``refetch_cooldown`` window, and concurrent callers
      share one in-flight fetch, so a flood of made-up ``kid`` values costs the
      issuer one request per window at most. The window counts only refetches
      caused by unknown kids: a routine (start-up or TTL) fetch moments before
      a rotation must not make the first token signed with the new key fail.

    ``clock`` is monotonic seconds; inject a fake one in tests.
    """

    def __init__(
        self,
        *,
        issuer: str,
        http: httpx.AsyncClient,
        ttl: float = 300.0,
        refetch_cooldown: float = 10.0,
        discovery_path: str = "/.well-known/oauth-authorization-server",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = issuer
        self._http = http
        self._ttl = ttl
        self._cooldown = refetch_cooldown
        self._discovery_url = issuer.rstrip("/") + discovery_path
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._jwks_uri: str | None = None
        self._loaded_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch, successful or not
        self._kid_refetch_at: float | None = None  # last fetch caused by an unknown kid
        self._flight: SingleFlight[str, None] = SingleFlight()

    def __repr__(self) -> str:
        return f"JWKSCache(issuer={self._issuer!r}, kids={sorted(self._keys)!r})"

    async def prefetch(self) -> None:
        """Load the keys now (call it at start-up); raises :class:`HopAuthError` on failure."""
        await self._flight.do("fetch", self._fetch)

    async def warm(self) -> bool:
        """Try to load the keys now without failing start-up.

        False (the failure is logged) when the issuer is not up yet: the keys
        then load on the first token, so services may start in any order.
        """
        try:
            await self.prefetch()
        except (HopAuthError, httpx.HTTPError):
            return False
        return True

    async def get_key(self, kid: str) -> jwt.PyJWK:
        now = self._clock()
        fetched = False
        if self._loaded_at is None or now - self._loaded_at >= self._ttl:
            fetched = await self._refresh(now)
        key = self._keys.get(kid)
        if key is not None:
            return key
        if not self._keys and self._loaded_at is None:
            raise InvalidTokenError("signing keys unavailable")
        if not fetched:
            # Maybe the issuer rotated a new key in: look again, cooldown permitting.
            await self._refetch_for_unknown_kid(now)
            key = self._keys.get(kid)
        if key is None:
            raise InvalidTokenError("unknown key")
        return key

    def _may_fetch(self, now: float) -> bool:
        # Joining a fetch already under way is free, so always allowed.
        return (
            self._flight.in_flight("fetch")
            or self._attempted_at is None
            or now - self._attempted_at >= self._cooldown
        )

    async def _refetch_for_unknown_kid(self, now: float) -> None:
        joining = self._flight.in_flight("fetch")
        if not joining:
            if self._kid_refetch_at is not None and now - self._kid_refetch_at < self._cooldown:
                return
            self._kid_refetch_at = now
        with contextlib.suppress(HopAuthError, httpx.HTTPError):
            await self._flight.do("fetch", self._fetch)

    async def _refresh(self, now: float) -> bool:
        """Fetch if the cooldown allows; on failure keep the old keys. True if fetched."""
        if not self._may_fetch(now):
            return False
        try:
            await self._flight.do("fetch", self._fetch)
        except (HopAuthError, httpx.HTTPError):
            # Logged by _fetch; the keys held so far stay in service.
            return False
        return True

    async def _fetch(self) -> None:
        try:
            jwks_uri = self._jwks_uri or await self._discover()
            response = await self._http.get(jwks_uri, headers={"Accept": "application/json"})
            keys = parse_jwks(_json_object(response, "JWK Set"))
        except (HopAuthError, httpx.HTTPError) as exc:
            # The JWKS location may have moved: read the metadata again next time.
            self._jwks_uri = None
            logger.warning(
                "fetching signing keys of %s failed (%d cached keys kept in service): %s",
                self._issuer,
                len(self._keys),
                exc,
            )
            raise
        finally:
            # The cooldown starts when a fetch ends, whatever its outcome.
            self._attempted_at = self._clock()
        self._keys = keys
        self._loaded_at = self._attempted_at
        logger.info("loaded %d signing keys of %s: %s", len(keys), self._issuer, sorted(keys))

    async def _discover(self) -> str:
        response = await self._http.get(self._discovery_url, headers={"Accept": "application/json"})
        metadata = _json_object(response, "authorization server metadata")
        # RFC 8414 §3.3: a mismatch means the metadata speaks for someone else
        # (or was tampered with); its keys must not be trusted.
        if metadata.get("issuer") != self._issuer:
            raise HopAuthError(
                f"issuer in metadata {metadata.get('issuer')!r} does not match {self._issuer!r}"
            )
        jwks_uri = metadata.get("jwks_uri")
        # An https issuer's keys over plain http could be swapped in transit, and
        # whoever swaps them mints tokens (RFC 8414 §6.1: TLS throughout).
        schemes = ("https://",) if self._issuer.startswith("https://") else ("https://", "http://")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(schemes):
            raise HopAuthError("authorization server metadata has no usable jwks_uri")
        self._jwks_uri = jwks_uri
        return jwks_uri


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise HopAuthError(f"fetching {what} failed: HTTP {response.status_code}")
    try:
        document = response.json()
    except ValueError:
        raise HopAuthError(f"{what} is not valid JSON") from None
    if not isinstance(document, dict):
        raise HopAuthError(f"{what} is not a JSON object")
    return document
