"""Customers' contact details, and a small in-process cache of the ones the directory found.

Each order brings the worker two events about one customer (``payment.succeeded``
and ``order.confirmed``); without a cache each costs a directory call at auth
(a token check and a database read there, an HTTP round trip here). A cache
is acceptable because:

* contact details change rarely, and a change reaches notifications within
  the TTL (``NOTIFICATION_CONTACT_TTL``, 60 seconds by default; 0 turns the
  cache off);
* only what the directory *found* is kept. "No such user" and failures are
  never cached: an unknown customer is asked about again (and dead-lettered
  again), and an outage is never papered over;
* privacy: it lives in this process's memory only (nothing in Redis or on
  disk), holds at most :data:`MAX_CONTACTS` entries (the oldest go first),
  and logs nothing, so no email address reaches a log line.

A user the directory drops keeps receiving notifications for at most the TTL.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

#: How many contacts are kept at most; more customers than that in one TTL evict the oldest.
MAX_CONTACTS = 10_000


@dataclass(frozen=True, slots=True)
class Contact:
    user_id: str
    email: str
    display_name: str


class ContactCache:
    """Found contacts, each kept ``ttl`` seconds, at most ``max_entries`` of them.

    ``clock`` gives seconds (monotonic by default; tests pass their own). Not
    thread-safe: the worker uses it from its one event loop.
    """

    def __init__(
        self,
        ttl: float,
        max_entries: int = MAX_CONTACTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0:
            raise ValueError("ttl must not be negative")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        # user id -> (expires at, contact), oldest first. Every entry lives the same TTL,
        # so insertion order is also expiry order.
        self._entries: OrderedDict[str, tuple[float, Contact]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, user_id: str) -> Contact | None:
        """The cached contact of ``user_id``, or None when absent or expired."""
        entry = self._entries.get(user_id)
        if entry is None:
            return None
        expires_at, contact = entry
        if self._clock() >= expires_at:
            del self._entries[user_id]
            return None
        return contact

    def put(self, contact: Contact) -> None:
        """Keep ``contact`` for the TTL (a no-op when the cache is off)."""
        if not self.enabled:
            return
        now = self._clock()
        self._entries.pop(contact.user_id, None)  # a refreshed entry moves to the end
        self._drop_expired(now)
        while len(self._entries) >= self.max_entries:
            self._entries.popitem(last=False)
        self._entries[contact.user_id] = (now + self.ttl, contact)

    def clear(self) -> None:
        self._entries.clear()

    def _drop_expired(self, now: float) -> None:
        while self._entries:
            expires_at, _ = next(iter(self._entries.values()))
            if now < expires_at:
                return
            self._entries.popitem(last=False)
