"""FastAPI dependencies as ``Annotated`` aliases; everything comes from app.state.

``SessionDep`` (from hopkit) owns the transaction: commit on success, roll
back on any error.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from hopauth import Principal
from hopauth.fastapi import Requires
from hopkit.db import SessionDep as SessionDep

# Requires validates the token and also declares the HTTP bearer scheme in OpenAPI.
# Named, so forward mode (forwarding.py) can swap it for a weaker one.
READ = Requires("billing:read", callers={"gateway"})
VERIFY = Requires("payments:verify", callers={"order", "notification-worker"})

InvoiceReader = Annotated[Principal, Depends(READ)]
"""A customer, through the gateway: the user's token exchanged for ``aud=billing``.

Only the gateway may present it (``act.sub``): a user's own token is for the
gateway (``aud=gateway``) and is refused here as addressed to someone else.
"""

PaymentVerifier = Annotated[Principal, Depends(VERIFY)]
"""A service checking a payment event against billing's record, by client credentials.

``order`` before it confirms or cancels an order, ``notification-worker``
before it tells a customer about a payment: an event can be forged, the
record cannot.
"""
