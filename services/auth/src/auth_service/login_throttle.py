"""Throttling password guessing at the login form (OWASP Authentication Cheat Sheet).

Failed logins are counted per username and per client IP in a fixed window
that starts with the first failure. Once either count reaches its limit, the
next attempt is refused *before* the password is checked: no argon2 work is
spent, and the answer is the same whether or not the user exists (no
user-existence oracle). Accounts are never locked: the window simply runs out.

An attempt is counted when it starts and given back when it succeeds, so
parallel guesses cannot all pass the check before any failure is recorded:
no more than the limit are ever checked per window. A success clears its own
username's count but leaves the IP's count of other failures alone.

Replicas share the counts through Redis when the service has one; without it
each process counts on its own (:class:`MemoryLoginThrottle`), as the DPoP
replay cache does. Production requires Redis (see ``config.py``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

#: Prefix of the Redis keys holding the counts.
KEY_PREFIX: Final = "auth:login-failures:"
_MAX_MEMORY_ENTRIES: Final = 100_000


class ThrottleUnavailable(Exception):
    """The counts cannot be read (Redis down): the login is refused, not let through."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Failures allowed per username and per client IP within ``window`` seconds."""

    per_username: int
    per_ip: int
    window: int


def counter_keys(username: str, client_ip: str) -> tuple[str, str]:
    """The keys of the two counts. ``username`` as the login looks it up (truncated, exact).

    The username is hashed so that any text a client types makes a short, plain key.
    """
    digest = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{KEY_PREFIX}user:{digest}", f"{KEY_PREFIX}ip:{client_ip}"


class LoginThrottle(Protocol):
    async def attempt(self, username: str, client_ip: str) -> int:
        """Count one login attempt: 0 if it may go on, else the seconds to wait.

        A refused attempt is not counted. Raises :class:`ThrottleUnavailable`
        when the counts cannot be read.
        """
        ...

    async def succeeded(self, username: str, client_ip: str) -> None:
        """The attempt succeeded: clear the username's count, give the IP its attempt back."""
        ...


# Check both counts, then count the attempt, in one atomic step. KEYS: username
# and IP keys; ARGV: their limits, then the window. The wait is rounded up, so
# Retry-After is never early. A count without an expiry (never written so) is
# given one rather than kept for ever.
_ATTEMPT: Final = """
local wait = 0
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[i]) then
    local ttl = tonumber(ARGV[3])
    local pttl = redis.call('PTTL', key)
    if pttl < 0 then
      redis.call('EXPIRE', key, ARGV[3])
    else
      ttl = math.ceil(pttl / 1000)
    end
    wait = math.max(wait, ttl, 1)
  end
end
if wait > 0 then
  return wait
end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then
    redis.call('EXPIRE', key, ARGV[3])
  end
end
return 0
"""

# KEYS: username and IP keys. DECR keeps the key's expiry; a key that already
# expired is left absent (DECR would create it at -1, without an expiry).
_SUCCEEDED: Final = """
redis.call('DEL', KEYS[1])
local count = tonumber(redis.call('GET', KEYS[2]) or '0')
if count > 0 then
  redis.call('DECR', KEYS[2])
end
return 0
"""


class RedisLoginThrottle:
    """Counts in Redis, shared by every replica; each step is one Lua script (atomic).

    Fails closed: if Redis cannot answer, :meth:`attempt` raises
    :class:`ThrottleUnavailable` and the login is refused. Skipping the check
    whenever Redis is down would give unlimited guesses for as long as it is.
    """

    def __init__(self, store: aioredis.Redis, limits: Limits) -> None:
        self._limits = limits
        self._attempt = store.register_script(_ATTEMPT)
        self._succeeded = store.register_script(_SUCCEEDED)

    async def attempt(self, username: str, client_ip: str) -> int:
        limits = self._limits
        try:
            wait = await self._attempt(
                keys=counter_keys(username, client_ip),
                args=[limits.per_username, limits.per_ip, limits.window],
            )
        except (RedisError, OSError) as exc:
            log.error("login throttle unavailable: %s", type(exc).__name__)
            raise ThrottleUnavailable from None
        return int(wait)

    async def succeeded(self, username: str, client_ip: str) -> None:
        try:
            await self._succeeded(keys=counter_keys(username, client_ip))
        except (RedisError, OSError) as exc:
            # The user is in; the IP keeps one attempt too many until its window ends.
            log.warning("could not clear login failures: %s", type(exc).__name__)


class MemoryLoginThrottle:
    """Counts in this process (no Redis): each replica counts on its own.

    Bounded: past ``max_entries`` live counts, the oldest is forgotten. Filling
    it takes that many distinct usernames or IPs failing within one window.
    No locking is needed: nothing here awaits, so each call runs whole on the
    event loop. ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        limits: Limits,
        *,
        max_entries: int = _MAX_MEMORY_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = limits
        self._max_entries = max_entries
        self._clock = clock
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (count, expiry), oldest first

    def __len__(self) -> int:
        return len(self._counts)

    async def attempt(self, username: str, client_ip: str) -> int:
        now = self._clock()
        keys = counter_keys(username, client_ip)
        limits = (self._limits.per_username, self._limits.per_ip)
        wait = 0
        for key, limit in zip(keys, limits, strict=True):
            count, expiry = self._live(key, now)
            if count >= limit:
                wait = max(wait, math.ceil(expiry - now), 1)
        if wait:
            return wait
        for key in keys:
            count, expiry = self._live(key, now)
            if count == 0:
                self._make_room(now)
                expiry = now + self._limits.window
            self._counts[key] = (count + 1, expiry)
        return 0

    async def succeeded(self, username: str, client_ip: str) -> None:
        now = self._clock()
        user_key, ip_key = counter_keys(username, client_ip)
        self._counts.pop(user_key, None)
        count, expiry = self._live(ip_key, now)
        if count > 0:
            self._counts[ip_key] = (count - 1, expiry)

    def _live(self, key: str, now: float) -> tuple[int, float]:
        entry = self._counts.get(key)
        if entry is None or entry[1] <= now:
            self._counts.pop(key, None)
            return 0, now
        return entry

    def _make_room(self, now: float) -> None:
        if len(self._counts) < self._max_entries:
            return
        self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        while len(self._counts) >= self._max_entries:
            del self._counts[next(iter(self._counts))]
