"""FastAPI dependencies as ``Annotated`` aliases; everything comes from app.state.

A user route's dependency does three things, in this order: validate the
token (``aud`` gateway, issued to the web client, the route's scope; an
invalid token never counts against anyone's limit), log who it is (claims
only, never the token), then count the request against that user's limit.

No ``from __future__ import annotations`` here: the per-route dependency is a
closure over its ``Requires``, and FastAPI must see that annotation evaluated
(a string would name a local it cannot resolve).
"""

from typing import Annotated, Any

from fastapi import Depends, Request
from hopauth import Principal
from hopauth.fastapi import BearerToken, Requires
from hopkit.logs import annotate

from .config import WEB_CLIENT
from .problems import rate_limited
from .ratelimit import RateLimiter
from .service import Gateway, User


async def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]


async def _broadcast_quota(request: Request) -> RateLimiter:
    quota: RateLimiter = request.app.state.broadcast_quota
    return quota


BroadcastQuota = Annotated[RateLimiter, Depends(_broadcast_quota)]
"""Broadcasts per staff member and window; counted by the route, after the body is valid."""


# Requires validates the token and also declares the HTTP bearer scheme in OpenAPI.
# Named, so forward mode (forwarding.py) can swap each for a weaker one.
ORDERS_WRITE = Requires("orders:write", callers={WEB_CLIENT})
ORDERS_READ = Requires("orders:read", callers={WEB_CLIENT})
BILLING_READ = Requires("billing:read", callers={WEB_CLIENT})
NOTIFICATIONS_READ = Requires("notifications:read", callers={WEB_CLIENT})
SUPPORT_READ = Requires("support:read", callers={WEB_CLIENT})
SUPPORT_BROADCAST = Requires("support:broadcast", callers={WEB_CLIENT})


def _user(requires: Requires) -> Any:
    async def user(
        request: Request,
        principal: Annotated[Principal, Depends(requires)],
        token: BearerToken,
    ) -> User:
        annotate(sub=principal.subject, client_id=principal.client_id, jti=principal.token_id)
        limiter: RateLimiter = request.app.state.rate_limiter
        verdict = await limiter.hit(principal.subject)
        if not verdict.allowed:
            annotate(rate_limited=True)
            raise rate_limited(verdict.retry_after, limiter.limit, limiter.window)
        return User(principal, token)

    return Depends(user)


OrderWriter = Annotated[User, _user(ORDERS_WRITE)]
"""A customer placing or cancelling an order."""

OrderReader = Annotated[User, _user(ORDERS_READ)]
"""A customer looking at their orders."""

InvoiceReader = Annotated[User, _user(BILLING_READ)]
"""A customer looking at their invoices."""

NotificationReader = Annotated[User, _user(NOTIFICATIONS_READ)]
"""A customer reading their notifications."""

SupportStaff = Annotated[User, _user(SUPPORT_READ)]
"""Support staff reading any order: ``support:read``, which only support staff get at login."""

Broadcaster = Annotated[User, _user(SUPPORT_BROADCAST)]
"""Support staff posting a broadcast: ``support:broadcast``, which only support staff get at
login (auth's ``role_scopes``); ``support:read`` alone does not post."""
