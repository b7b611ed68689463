"""FastAPI dependencies as ``Annotated`` aliases; everything comes from app.state.

``SessionDep`` (from hopkit) owns the transaction: commit on success, roll
back on any error.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from hopauth import Principal
from hopauth.fastapi import Requires
from hopkit.db import SessionDep as SessionDep

from .provider import SimulatedProvider

# Requires validates the token and also declares the HTTP bearer scheme in OpenAPI.
# Named, so forward mode (forwarding.py) can swap it for a weaker one.
READ = Requires("billing:read", callers={"gateway"})
VERIFY = Requires("payments:verify", callers={"order", "order-scheduler", "notification-worker"})
REFUND = Requires("payments:refund", callers={"order"})

InvoiceReader = Annotated[Principal, Depends(READ)]
"""A customer, through the gateway: the user's token exchanged for ``aud=billing``.

Only the gateway may present it (``act.sub``): a user's own token is for the
gateway (``aud=gateway``) and is refused here as addressed to someone else.
"""

PaymentVerifier = Annotated[Principal, Depends(VERIFY)]
"""A service checking a payment event against billing's record, by client credentials.

``order`` before it confirms or cancels an order, ``order-scheduler`` (the
order service's expiry job) before it confirms an overdue order whose stock
was sold, ``notification-worker`` before it tells a customer about a payment:
an event can be forged, the record cannot.
"""

PaymentRefunder = Annotated[Principal, Depends(REFUND)]
"""The order service giving back a payment for an order cancelled first, by client credentials.

Only ``order``: it alone knows the order was cancelled before the payment reached it.
"""


def _provider(request: Request) -> SimulatedProvider:
    provider: SimulatedProvider = request.app.state.provider
    return provider


ProviderDep = Annotated[SimulatedProvider, Depends(_provider)]
"""The payment provider the process uses (the worker charges with the same one)."""
