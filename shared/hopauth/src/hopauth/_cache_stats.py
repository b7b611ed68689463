"""Hit and miss counters shared by the token caches."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CacheStats"]


@dataclass(slots=True)
class CacheStats:
    """Calls served from the cache (``hits``) and calls that were not (``misses``).

    Concurrent misses for one key share a single token request.
    """

    hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
