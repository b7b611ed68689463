"""A DPoP :class:`~hopauth.rfc9449.ReplayCache` in Redis (needs the ``redis`` extra).

Replicas of a service (and services sharing one Redis) then refuse a proof
that any of them has already accepted (RFC 9449 §11.1).
"""

from __future__ import annotations

import logging
import math

import redis.asyncio as redis
from redis.exceptions import RedisError

from .errors import InvalidDPoPProofError

__all__ = ["DPOP_JTI_PREFIX", "RedisReplayCache"]

logger = logging.getLogger(__name__)

#: Default prefix of the keys that record used proof ``jti`` values.
DPOP_JTI_PREFIX = "hopauth:dpop-jti:"


class RedisReplayCache:
    """Records each proof ``jti`` with ``SET <prefix><jti> 1 NX EX <seconds>``.

    ``NX`` makes check-and-record one atomic step, so two replicas receiving
    the same proof at once cannot both accept it; ``EX`` lets Redis forget the
    ``jti`` once the proof would be refused as too old anyway.

    Fails closed: if Redis cannot answer, the proof is refused with
    ``InvalidDPoPProofError("replay check unavailable")``. A replay check that
    is skipped whenever Redis is down protects nothing an attacker cannot
    switch off; the price is that a Redis outage refuses DPoP requests. Give
    the client short socket timeouts.
    """

    def __init__(self, store: redis.Redis, *, prefix: str = DPOP_JTI_PREFIX) -> None:
        self._redis = store
        self._prefix = prefix

    def __repr__(self) -> str:
        return f"RedisReplayCache({self._redis!r}, prefix={self._prefix!r})"

    async def first_use(self, jti: str, expires_in: float) -> bool:
        try:
            created = await self._redis.set(
                self._prefix + jti, b"1", nx=True, ex=max(1, math.ceil(expires_in))
            )
        except (RedisError, OSError) as exc:
            logger.warning("DPoP replay check failed, refusing the proof: %s", type(exc).__name__)
            raise InvalidDPoPProofError("replay check unavailable") from None
        return bool(created)
