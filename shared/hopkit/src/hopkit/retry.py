"""The backoff between attempts that the relay and the consumer share."""

from __future__ import annotations

import random


def backoff_delay(bounds: tuple[float, float], attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    Exponential: ``first * 2**(attempt-1)``, at most ``largest``, less up to
    20% of jitter so that clients failing together do not retry together.
    """
    first, largest = bounds
    delay = min(largest, first * 2.0 ** (attempt - 1))
    return delay * random.uniform(0.8, 1.0)  # noqa: S311 - jitter, not a secret
