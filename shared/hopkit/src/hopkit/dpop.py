"""DPoP (RFC 9449) for one service process: its keys and its proof checks, in one place.

hopauth has both sides; this module only decides, from the settings
(``HOPSHOP_DPOP``, see :attr:`~hopkit.settings.CommonSettings.dpop_enabled`),
whether they are on, and wires them the same way in every service:

* sending side: :meth:`ClientKeys.for_client` gives one key per OAuth client
  the process acts as (``order`` and ``order-scheduler`` get different keys),
  for ``TokenEndpoint(dpop_key=...)``; every token obtained through it is
  bound to that key (RFC 9449 §5) and sent with a fresh proof (§7.1);
* receiving side: :func:`install` sets ``app.state.hopauth_dpop`` (a
  :class:`~hopauth.DPoPProofValidator` whose proof ``jti`` values are
  remembered in Redis, shared by replicas, §11.1) and
  ``app.state.hopauth_require_dpop`` for :class:`hopauth.fastapi.Requires`.
  A proof's ``htu`` must name one of the service's own URLs (its
  ``HOPSHOP_<NAME>_URL``, the URL its callers are given), never the ``Host``
  header the caller sent (§4.3 point 9).

Keys are generated at start-up and never leave the process: a restarted
process gets new tokens for its new key, which costs one token request each.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

import redis.asyncio as redis
from fastapi import FastAPI
from hopauth import DPoPKey, DPoPProofValidator, MemoryReplayCache, ReplayCache
from hopauth.redis_replay import RedisReplayCache

from .settings import CommonSettings

__all__ = ["ClientKeys", "install"]

log = logging.getLogger(__name__)


class ClientKeys:
    """The DPoP keys of one process, one per OAuth client identity (RFC 9449 §4.2, §5).

    With DPoP off every ``for_client`` is None: the endpoint then asks for
    plain bearer tokens (RFC 6750).
    """

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._keys: dict[str, DPoPKey] = {}

    @property
    def enabled(self) -> bool:
        return self._enabled

    def for_client(self, client_id: str) -> DPoPKey | None:
        """The key of ``client_id`` in this process, made on first use; None when DPoP is off.

        One key per identity, not per process: a token endpoint client binds
        all its tokens to its key, and two identities sharing one key would be
        indistinguishable to a resource server checking ``cnf.jkt``.
        """
        if not self._enabled:
            return None
        key = self._keys.get(client_id)
        if key is None:
            key = self._keys[client_id] = DPoPKey.generate()
        return key

    def __repr__(self) -> str:
        # Thumbprints only: they identify the keys and reveal nothing.
        keys = {client: key.thumbprint for client, key in self._keys.items()}
        return f"ClientKeys(enabled={self._enabled}, keys={keys!r})"


def install(
    app: FastAPI,
    settings: CommonSettings,
    store: redis.Redis | None,
    *,
    required: bool,
    origins: Sequence[str],
) -> ClientKeys:
    """DPoP on ``app``'s receiving side, and the keys for its sending side.

    Call it in the lifespan, once ``store`` (the service's Redis, or None)
    exists. With DPoP on, proofs are checked on every request carrying a
    bound token (RFC 9449 §7.1); ``required`` also refuses unbound tokens
    (services whose callers are all services), not where users' bearer tokens
    arrive (the gateway). ``origins`` are the base URLs callers reach this
    service at (``http://order:8002``; a path is dropped): a proof must name one of
    them (§4.3 point 9); none, or one without a scheme and host, is a ``ValueError``. With
    DPoP off, ``app.state.hopauth_dpop`` is None and a bound token is refused
    outright (hopauth never accepts one as bearer). The keys are on
    ``app.state.dpop_keys`` too.
    """
    keys = ClientKeys(settings.dpop_enabled)
    app.state.dpop_keys = keys
    if not settings.dpop_enabled:
        app.state.hopauth_dpop = None
        app.state.hopauth_require_dpop = False
        log.info("DPoP off: tokens are bearer tokens")
        return keys
    if not origins:
        # Fail at start-up, not on the first bound token (hopauth refuses such a validator).
        raise ValueError("DPoP is on, but this service was given no URL of its own to check proofs")
    replay_cache: ReplayCache
    if store is not None:
        # Shared by replicas, fails closed: a proof replayed at another replica is refused.
        replay_cache = RedisReplayCache(store)
    else:
        replay_cache = MemoryReplayCache()
        if settings.is_production:
            log.warning("HOPSHOP_REDIS_URL is not set: DPoP replays are caught per process only")
    validator = DPoPProofValidator(replay_cache=replay_cache, origins=as_origins(origins))
    app.state.hopauth_dpop = validator
    app.state.hopauth_require_dpop = required
    log.info(
        "DPoP on: tokens bound to this process's keys; proofs %s, for %s",
        "required on every request" if required else "checked for bound tokens",
        " ".join(validator.origins),
    )
    return keys


def as_origins(urls: Sequence[str]) -> tuple[str, ...]:
    """``scheme://host[:port]`` of each of ``urls``, in order, without repeats.

    A public URL may carry a path (``GATEWAY_PUBLIC_URL=https://shop.example/app``),
    yet ``htu`` is compared as origin plus the path this server receives, so
    only the origin counts. One without a scheme and host is a ``ValueError``.
    """
    origins: list[str] = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {url!r}")
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return tuple(dict.fromkeys(origins))
