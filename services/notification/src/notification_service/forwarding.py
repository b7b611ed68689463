"""Notification in the vulnerable teaching mode (``HOPSHOP_PROPAGATION=forward``).

In forward mode the gateway sends the customer's own login token
(``aud=gateway``, client ``web``, no ``act``) to ``GET /notifications``
instead of one exchanged for notification, so notification accepts any
audience of the system (``hopkit.forwarding.extra_audiences``). What is lost:

- reading notifications: the caller check and the proof of delegation. A
  forwarded token has no RFC 8693 ``act`` claim, so notification can neither
  see that the gateway is calling nor that the token was exchanged for this
  customer; it settles for "some user's token with ``notifications:read``".
  Anyone holding a customer's token, any service it was forwarded to
  included, reads that customer's notifications here directly.
- broadcasts: still the gateway's client-credentials token (no user is
  behind a broadcast, nothing is forwarded) with ``notifications:broadcast``
  and no user in it, but the caller check goes: any client granted the scope
  may broadcast.

No ``from __future__ import annotations``: FastAPI must see the dependency's
``Annotated`` annotation evaluated.
"""

from typing import Annotated

from fastapi import Depends
from hopauth import Principal
from hopauth.fastapi import Requires
from hopkit.forwarding import Overrides
from hopkit.problems import Problem

from .deps import BROADCAST, PROBLEMS, delegated_customer

_READ = Requires("notifications:read")


async def forwarded_customer(principal: Annotated[Principal, Depends(_READ)]) -> Principal:
    """Any user's token with ``notifications:read``; a service's own token is still refused."""
    if principal.is_service:
        raise Problem(
            403,
            "User context required",
            "notifications are read with a customer's token; this token acts for no user",
            type_=PROBLEMS + "user-context-required",
        )
    return principal


WEAKENED: Overrides = {
    delegated_customer: forwarded_customer,
    BROADCAST: Requires("notifications:broadcast"),
}
"""Each secure check of :mod:`notification_service.deps` -> its forward-mode stand-in."""
