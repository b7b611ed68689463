"""Inventory in the vulnerable teaching mode (``HOPSHOP_PROPAGATION=forward``).

In forward mode the order service sends the customer's own login token on to
``POST /reservations`` instead of exchanging it (RFC 8693), so inventory
accepts any audience of the system (``hopkit.forwarding.extra_audiences``) and
checks only what that token can still tell it. What is lost, per route:

- reserve: the user's token never carries ``inventory:reserve`` (that scope
  exists only for the hop order -> inventory), so the nearest thing it does
  carry, the user's ``orders:write``, stands in; and the caller is no longer
  checked, because a forwarded token names the web client, not order (no
  ``act`` chain). Anyone holding a customer's token, gateway and billing
  included, can now reserve (and so lock up) stock directly.
- release, commit: still client-credentials calls with ``inventory:release``
  (no user is behind them, nothing is forwarded), but the caller check goes
  with the rest: in forward mode inventory takes any caller whose token
  carries the scope, the teaching point being that scope alone does not say
  who is calling.

Signature, expiry, issuer and revocation stay checked.
"""

from __future__ import annotations

from hopauth.fastapi import Requires
from hopkit.forwarding import Overrides

from .deps import COMMIT, RELEASE, RESERVE

WEAKENED: Overrides = {
    RESERVE: Requires("orders:write"),
    RELEASE: Requires("inventory:release"),
    COMMIT: Requires("inventory:release"),
}
"""Each secure check of :mod:`inventory_service.deps` -> its forward-mode stand-in."""
