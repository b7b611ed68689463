"""The order service in the vulnerable teaching mode (``HOPSHOP_PROPAGATION=forward``).

In forward mode the gateway sends the customer's own login token
(``aud=gateway``, client ``web``, no ``act``) instead of one exchanged for
order, so order accepts any audience of the system
(``hopkit.forwarding.extra_audiences``) and keeps only the checks such a token
can still pass. What is lost, per route:

- customer and support routes (orders:read, orders:write, support:read):
  the caller check. Order can no longer tell that the gateway is calling
  (there is no ``act`` chain, only the web client), so anyone holding a
  customer's token, any service it was forwarded to included, can place,
  read and cancel that customer's orders here directly. The user's own
  scopes are still required.
- the billing worker's ``/internal/orders/{id}``: keeps ``orders:read`` but
  not the caller. That scope is in every customer's token too, so any
  customer can now read *any* order by id: the caller check was the only
  thing that made this route internal.
- the notification worker's ``/internal/orders/{id}/status``: keeps
  ``orders:status`` but not the caller. No customer holds that scope, so it
  stays closed to them; any other client the issuer granted it could read it.

Order in turn forwards the customer's token to inventory unchanged
(:mod:`order_service.hops`). Signature, expiry, issuer and revocation stay
checked.
"""

from __future__ import annotations

from hopauth.fastapi import Requires
from hopkit.forwarding import Overrides

from .deps import INTERNAL_READ, INTERNAL_STATUS, READ, SUPPORT, WRITE

WEAKENED: Overrides = {
    READ: Requires("orders:read"),
    WRITE: Requires("orders:write"),
    SUPPORT: Requires("support:read"),
    INTERNAL_READ: Requires("orders:read"),
    INTERNAL_STATUS: Requires("orders:status"),
}
"""Each secure check of :mod:`order_service.deps` -> its forward-mode stand-in."""
