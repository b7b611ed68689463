"""Session revocation checks against Redis (needs the ``redis`` extra).

See :mod:`hopauth.revocation` for the key contract with the auth service.
"""

from __future__ import annotations

import logging

import redis.asyncio as redis
from redis.exceptions import RedisError

from .errors import RevocationUnavailableError
from .principal import Principal
from .revocation import revoked_session_key

__all__ = ["RedisRevocationChecker"]

logger = logging.getLogger(__name__)


class RedisRevocationChecker:
    """Refuses tokens whose ``sid`` has a ``hopauth:revoked-sid:<sid>`` key in Redis.

    Fails closed: if Redis cannot answer, the token is refused with
    ``RevocationUnavailableError("revocation status unavailable")`` (a 503 at
    the FastAPI adapter: the token may be good, the check is what failed). A
    logged-out session must never be honoured just because Redis is down; the
    price is that a Redis outage refuses user tokens (client-credentials tokens
    carry no ``sid`` and are not affected). Give the client short socket timeouts.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def __repr__(self) -> str:
        return f"RedisRevocationChecker({self._redis!r})"

    async def is_revoked(self, principal: Principal) -> bool:
        if principal.session_id is None:
            return False
        try:
            found = await self._redis.exists(revoked_session_key(principal.session_id))
        except (RedisError, OSError) as exc:
            logger.warning(
                "revocation check failed, refusing token jti=%s: %s",
                principal.token_id,
                type(exc).__name__,
            )
            raise RevocationUnavailableError("revocation status unavailable") from None
        return bool(found)
