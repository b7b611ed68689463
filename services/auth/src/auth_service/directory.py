"""The user directory API: services look up a customer's contact details.

Only the notification worker may read it, with its own client-credentials
token (audience ``auth``, scope ``users:read``): no user token is involved,
so nothing here acts for a user.

It stays strict in the vulnerable forward mode (``HOPSHOP_PROPAGATION=forward``,
see ``hopkit.forwarding``): that mode weakens the hops users' tokens are
forwarded along, and the issuer is not one of them. Nobody forwards a user's
token here, so there is nothing to weaken for, and the issuer keeps checking
its own audience and the caller.
"""

from __future__ import annotations

from typing import Annotated

import jwt
from fastapi import APIRouter, Depends, Path
from hopauth import InvalidTokenError, Principal
from hopauth.fastapi import Requires
from hopkit.problems import Problem
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from . import repository
from .db import transaction
from .deps import ServerDep
from .keys import KeyStore

AUDIENCE = "auth"

router = APIRouter(tags=["users"])

UserReader = Annotated[Principal, Depends(Requires("users:read", callers={"notification-worker"}))]


class UserOut(BaseModel):
    id: str
    username: str
    email: str
    display_name: str


class IssuerKeys:
    """hopauth's KeySource over the issuer's own key store: no HTTP to ourselves."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys

    async def get_key(self, kid: str) -> jwt.PyJWK:
        jwk = await run_in_threadpool(self._keys.public_jwk, kid)
        if jwk is None:
            raise InvalidTokenError("unknown key")
        return jwt.PyJWK(jwk)


#: User ids are ours (UUIDs); checked before any query, as PostgreSQL refuses NUL in text.
USER_ID = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$", description="The user's id")


@router.get("/users/{user_id}", response_model=UserOut)
async def get_user(principal: UserReader, server: ServerDep, user_id: str = USER_ID) -> UserOut:
    def load() -> UserOut | None:
        with transaction(server.context.db) as session:
            user = repository.user_by_id(session, user_id)
            if user is None:
                return None
            return UserOut(
                id=user.id,
                username=user.username,
                email=user.email,
                display_name=user.display_name,
            )

    found = await run_in_threadpool(load)
    if found is None:
        raise Problem(404, "User not found", f"there is no user {user_id!r}")
    return found
