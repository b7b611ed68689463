"""Session revocation: the contract between the auth service and resource servers.

When a user logs out (or an operator kills a session), the auth service writes
the key :func:`revoked_session_key` (``sid``) to Redis with a TTL at least as
long as the longest access token lifetime issued in that session. Resource
servers refuse any token whose ``sid`` claim has such a key, so logout takes
effect at once instead of when the last token expires. The key's value is not
read; its existence is the signal. That key format IS the contract: change it
on both sides at once, or not at all.
"""

from __future__ import annotations

from typing import Protocol

from .principal import Principal

__all__ = ["REVOKED_SID_PREFIX", "RevocationChecker", "revoked_session_key"]

#: Prefix of the Redis keys that mark a login session (``sid``) as revoked.
REVOKED_SID_PREFIX = "hopauth:revoked-sid:"


def revoked_session_key(sid: str) -> str:
    """The Redis key whose existence means session ``sid`` is revoked.

    Returns ``"hopauth:revoked-sid:<sid>"``; the auth service sets it (with a
    TTL) and :class:`hopauth.redis_revocation.RedisRevocationChecker` reads it.
    """
    return f"{REVOKED_SID_PREFIX}{sid}"


class RevocationChecker(Protocol):
    """Decides whether a validated token's session was revoked after issuance."""

    async def is_revoked(self, principal: Principal) -> bool:
        """True to refuse the token. Raise ``RevocationUnavailableError`` when it
        cannot tell (fail closed; the FastAPI adapter answers 503, not 401)."""
        ...
