"""Per-user rate limit in Redis: a fixed window per user, counted atomically.

One mechanism, two counters: the per-user request limit (every user call) and
the broadcast quota (broadcasts per staff member, :data:`BROADCAST_PREFIX`), so
the two never share a key whatever their windows.

One Lua script does INCR and, on the window's first request, PEXPIRE: the
two cannot be separated by a crash or a race, so a counter never lives on
without an expiry (which would lock a user out for good). Windows are fixed,
not sliding: a user can burst up to twice the limit across a window edge,
which is fine for a limit that protects capacity.

**When Redis fails, the limiter fails open** (the request goes through, and a
warning is logged at most every few seconds). The limit guards capacity, not
access: authentication and authorization are complete without it. Failing
closed would turn a cache outage into an outage of the whole public API,
the very thing a rate limit exists to prevent. (Revocation, which does guard
access, fails closed: see hopauth's ``RedisRevocationChecker``.) The broadcast
quota fails open too: with a store configured, a token is checked for
revocation in that same store first, so an outage stops the request before it
gets here; and however many broadcasts get through, notification lists only
the newest few next to a customer's own notifications.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY_PREFIX = "gateway:ratelimit:"
#: The broadcast quota's counters: broadcasts per staff member and window.
BROADCAST_PREFIX = "gateway:broadcasts:"
#: Seconds between two "limiter unavailable" warnings, so an outage does not flood the logs.
_WARN_EVERY = 10.0

# KEYS[1] counter, ARGV[1] window in ms -> {count, ms until the window ends}
_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: int  # whole seconds until the window ends (0 when allowed)


ALLOW = Verdict(allowed=True, retry_after=0)


class RateLimiter:
    """At most ``limit`` requests per ``window`` seconds per key; no store, no limit."""

    def __init__(
        self, store: redis.Redis | None, *, limit: int, window: float, prefix: str = KEY_PREFIX
    ) -> None:
        self.limit = limit
        self.window = window
        self._prefix = prefix
        self._store = store
        self._window_ms = max(1, round(window * 1000))
        self._script = store.register_script(_SCRIPT) if store is not None else None
        self._warned_at = -math.inf

    def __repr__(self) -> str:
        return f"RateLimiter({self._prefix!r}, limit={self.limit}, window={self.window:g})"

    async def hit(self, key: str) -> Verdict:
        """Count one request for ``key`` (a user's ``sub``) and say whether it may pass."""
        if self._script is None:
            return ALLOW
        try:
            count, ttl_ms = await self._script(keys=[self._key(key)], args=[self._window_ms])
        except (RedisError, OSError) as exc:
            self._warn(exc)
            return ALLOW
        if int(count) <= self.limit:
            return ALLOW
        return Verdict(allowed=False, retry_after=max(1, math.ceil(int(ttl_ms) / 1000)))

    def _key(self, key: str) -> str:
        # The window is part of the key: replicas with one configuration share a
        # counter, and a counter never outlives a change of window (rolling deploys).
        return f"{self._prefix}{self._window_ms}:{key}"

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning(
                "rate limiter %s unavailable, failing open: %s", self._prefix, type(exc).__name__
            )
