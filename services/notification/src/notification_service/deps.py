"""FastAPI dependencies as ``Annotated`` aliases; everything comes from app.state.

``SessionDep`` (from hopkit) owns the transaction: it commits before the
response is sent and rolls back on any error.

Both routes check more than scope and caller: *whose* authority the token
carries. Reading notifications is a customer's act, so it takes a token
exchanged for that customer; a broadcast is support's act through the
gateway's own identity, so it takes a client-credentials token and refuses
one that carries a user (DESIGN.md: no user context reaches notification).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from hopauth import Principal
from hopauth.fastapi import Requires
from hopkit.db import SessionDep as SessionDep
from hopkit.problems import Problem

PROBLEMS = "https://hopshop.example/problems/"

# Requires validates the token and also declares the HTTP bearer scheme in OpenAPI.
# Named, so forward mode (forwarding.py) can swap each for a weaker one.
READ = Requires("notifications:read", callers={"gateway"})
BROADCAST = Requires("notifications:broadcast", callers={"gateway"})


async def delegated_customer(principal: Annotated[Principal, Depends(READ)]) -> Principal:
    if not principal.is_delegated:
        raise Problem(
            403,
            "User context required",
            "notifications are read with a token exchanged for the customer; "
            "this token acts for no user",
            type_=PROBLEMS + "user-context-required",
        )
    return principal


async def _support_broadcast(principal: Annotated[Principal, Depends(BROADCAST)]) -> Principal:
    if not principal.is_service or principal.session_id is not None:
        raise Problem(
            403,
            "User context refused",
            "a broadcast is made with the gateway's own client-credentials token; "
            "this token carries a user",
            type_=PROBLEMS + "user-context-refused",
        )
    return principal


Customer = Annotated[Principal, Depends(delegated_customer)]
"""A customer, through the gateway, by a token exchanged for them (``notifications:read``)."""

Broadcaster = Annotated[Principal, Depends(_support_broadcast)]
"""The gateway itself, by client credentials (``notifications:broadcast``), no user behind it."""
