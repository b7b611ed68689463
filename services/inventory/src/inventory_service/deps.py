"""FastAPI dependencies as ``Annotated`` aliases; everything comes from app.state.

``SessionDep`` (from hopkit) owns the transaction: it commits before the
response is sent, so a client never sees a 201 for a reservation that then
fails to commit, and rolls back on any error.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from hopauth import Principal
from hopauth.fastapi import Requires
from hopkit.db import SessionDep as SessionDep

# Requires validates the token and also declares the HTTP bearer scheme in OpenAPI.
# Named, so forward mode (forwarding.py) can swap each for a weaker one.
RESERVE = Requires("inventory:reserve", callers={"order"})
RELEASE = Requires("inventory:release", callers={"order", "order-scheduler"})
COMMIT = Requires("inventory:release", callers={"order"})

Reserver = Annotated[Principal, Depends(RESERVE)]
"""The order service, exchanging a user's token to reserve stock for that user's order."""

Releaser = Annotated[Principal, Depends(RELEASE)]
"""The order service (cancellation) or its scheduler (expiry), by client credentials."""

Committer = Annotated[Principal, Depends(COMMIT)]
"""The order service once an order is paid, by client credentials (``inventory:release``
settles reservations either way; only ``order`` may settle one as sold)."""
