"""Billing in the vulnerable teaching mode (``HOPSHOP_PROPAGATION=forward``).

In forward mode the gateway sends the customer's own login token
(``aud=gateway``, client ``web``, no ``act``) to ``GET /invoices`` instead of
one exchanged for billing, so billing accepts any audience of the system
(``hopkit.forwarding.extra_audiences``). What is lost: the caller check.
Billing can no longer tell that the gateway is calling, so anyone holding a
customer's token, any service it was forwarded to included, reads that
customer's invoices here directly. The user's own ``billing:read`` is still
required; signature, expiry, issuer and revocation stay checked.

``GET /internal/orders/{id}/payment`` (``payments:verify``) loses its caller
check too but keeps the scope: no customer token holds ``payments:verify``,
so only a service's client-credentials token passes, whichever service it is.
``POST /internal/orders/{id}/refund`` (``payments:refund``) likewise.

Billing's own outgoing call (the worker fetching an order) has no user
behind it and keeps its client-credentials token in both modes.
"""

from __future__ import annotations

from hopauth.fastapi import Requires
from hopkit.forwarding import Overrides

from .deps import READ, REFUND, VERIFY

WEAKENED: Overrides = {
    READ: Requires("billing:read"),
    VERIFY: Requires("payments:verify"),
    REFUND: Requires("payments:refund"),
}
"""Each secure check of :mod:`billing_service.deps` -> its forward-mode stand-in."""
