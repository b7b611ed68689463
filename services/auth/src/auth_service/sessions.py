"""Login sessions and their revocation.

Revoking a session is the single kill switch for a login: the refresh-token
family dies, the issuer refuses its tokens in exchanges and introspection, and
resource servers using hopauth's Redis check refuse every token carrying its
``sid`` — exchanged descendants included.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import redis
from hopauth.revocation import revoked_session_key
from sqlalchemy.orm import Session, sessionmaker

from . import repository
from .db import transaction

log = logging.getLogger(__name__)

_MAX_CACHED_SESSIONS = 100_000


class SessionRevoker:
    def __init__(
        self,
        factory: sessionmaker[Session],
        redis_client: redis.Redis | None,
        *,
        marker_ttl: int,
        active_cache_ttl: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._factory = factory
        self._redis = redis_client
        # The marker must outlive every token carrying the sid: the user token's lifetime.
        self._marker_ttl = marker_ttl
        self._clock = clock
        self._active_ttl = active_cache_ttl
        self._active_until: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def is_active(self, sid: str) -> bool:
        """Whether the session may still be used, from the database.

        A positive answer is remembered for ``active_cache_ttl`` seconds so the
        exchange hot path rarely touches the database. A revocation made here
        clears it at once; one made by another replica is seen within the TTL
        (resource servers see it at once through the Redis marker).
        """
        now = self._clock()
        with self._lock:
            until = self._active_until.get(sid)
            if until is not None and until > now:
                return True
        with transaction(self._factory) as session:
            active = repository.session_is_active(session, sid, int(now))
        if active and self._active_ttl > 0:
            with self._lock:
                self._active_until[sid] = now + self._active_ttl
                self._active_until.move_to_end(sid)
                while len(self._active_until) > _MAX_CACHED_SESSIONS:
                    self._active_until.popitem(last=False)
        return active

    def revoke(self, sid: str, reason: str) -> None:
        """Revoke in its own transaction: it must stick even if the request then fails."""
        with transaction(self._factory) as session:
            revoked = repository.revoke_login_session(session, sid, int(self._clock()), reason)
        # After the commit, so a concurrent check cannot re-cache the old state.
        with self._lock:
            self._active_until.pop(sid, None)
        if revoked:
            log.info("session revoked", extra={"sid": sid, "reason": reason})
        self._publish(sid)

    def republish_recent(self) -> int:
        """Re-send markers of recently revoked sessions (after a Redis restart)."""
        since = int(self._clock()) - self._marker_ttl
        with transaction(self._factory) as session:
            sids = repository.sessions_revoked_since(session, since)
        for sid in sids:
            self._publish(sid)
        return len(sids)

    def _publish(self, sid: str) -> None:
        if self._redis is None:
            return
        try:
            self._redis.set(revoked_session_key(sid), "1", ex=self._marker_ttl)
        except redis.RedisError:
            # The database is authoritative; republish_recent() heals this at start-up.
            log.error("could not publish session revocation to redis", extra={"sid": sid})
