"""The gateway in the vulnerable teaching mode (``HOPSHOP_PROPAGATION=forward``).

In this mode the gateway forwards the user's own token downstream instead of
exchanging it (:mod:`gateway_service.hops` picks), and like every service
accepts any audience of the system (``hopkit.forwarding.extra_audiences``).
What the public front door loses:

- the audience check: a token made for any service (``aud=order``,
  ``aud=inventory`` ...) now opens the public API too, so a token leaked by
  any service behind the gateway, from a log line or a compromised host, is
  as good as the user's login;
- the caller check (``client_id`` / ``act`` must be the web client): the
  gateway no longer asks which client the token was issued to, as nothing
  downstream does either in this mode.

The user's own scopes, signature, expiry, issuer, revoked sessions and the
rate limit stay. hopkit's ``forwarding.install`` adds the
``X-Hopshop-Mode: vulnerable-forwarding`` header and the start-up warning.
"""

from __future__ import annotations

from hopauth.fastapi import Requires
from hopkit.forwarding import Overrides

from .deps import (
    BILLING_READ,
    NOTIFICATIONS_READ,
    ORDERS_READ,
    ORDERS_WRITE,
    SUPPORT_BROADCAST,
    SUPPORT_READ,
)

WEAKENED: Overrides = {
    ORDERS_WRITE: Requires("orders:write"),
    ORDERS_READ: Requires("orders:read"),
    BILLING_READ: Requires("billing:read"),
    NOTIFICATIONS_READ: Requires("notifications:read"),
    SUPPORT_READ: Requires("support:read"),
    SUPPORT_BROADCAST: Requires("support:broadcast"),
}
"""Each secure check of :mod:`gateway_service.deps` -> its forward-mode stand-in."""
