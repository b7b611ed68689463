"""The vulnerable teaching mode (``HOPSHOP_PROPAGATION=forward``): the parts every service shares.

In this mode a service that calls another on a user's behalf sends the
user's own token on unchanged instead of exchanging it (RFC 8693), the
pattern "forward the user JWT to all downstream services". To make the shop
still work, every service must then accept a token that was not made for it:

- any audience of the system (:data:`AUDIENCES`), because the user's token
  says ``aud=gateway`` wherever it travels (RFC 9068 §4 would refuse it);
- any caller, because a forwarded token names the client the user logged in
  with (``web``), never the service presenting it (no RFC 8693 §4.1 ``act``).

Signature, expiry, issuer, revocation and the user's own scopes are still
checked, as in real systems that forward tokens. What is lost is exactly what
makes a stolen token useless elsewhere: a token leaked by any one service
opens every other, and a service cannot tell a neighbour from an attacker.

Each service declares, as data in its own ``forwarding`` module, which of its
dependencies it weakens and how; :func:`install` applies that with FastAPI's
``dependency_overrides``, so the secure code path has no ``if forward:``. The
mode cannot be missed: it is refused in production (:mod:`hopkit.settings`),
logged loudly at start-up and stamped on every HTTP response.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .settings import Propagation

log = logging.getLogger(__name__)

#: Every audience id of the system (DESIGN.md, "Services, ports, identities"), in one place.
#: ``auth`` is the user directory's; the auth service itself never widens its own.
AUDIENCES: Final = ("gateway", "order", "inventory", "billing", "notification", "auth")

MODE_HEADER: Final = "x-hopshop-mode"
VULNERABLE: Final = "vulnerable-forwarding"

#: A secure dependency -> the weaker one a service uses in forward mode.
Overrides = Mapping[Callable[..., Any], Callable[..., Any]]


def warning(service: str) -> str:
    """The start-up warning of ``service`` in forward mode."""
    return (
        f"!!! HOPSHOP_PROPAGATION=forward: VULNERABLE TEACHING MODE !!! {service} accepts "
        "any token from the issuer whatever its audience and whoever presents it, and users' "
        "tokens travel between services unchanged: a token stolen from one service opens "
        "every other. Never run this outside a workshop."
    )


def warn_loudly(service: str) -> None:
    log.warning(warning(service))


def extra_audiences(propagation: Propagation) -> tuple[str, ...]:
    """The audiences a service accepts besides its own: all of them when forwarding, else none.

    Pass it as ``AccessTokenValidator(extra_audiences=...)`` (RFC 9068 §4 lets a
    resource server have several identifiers; here that is the hole being taught).
    """
    return AUDIENCES if propagation is Propagation.FORWARD else ()


class VulnerableModeHeader:
    """Pure ASGI: adds ``X-Hopshop-Mode: vulnerable-forwarding`` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_mode(message: Message) -> None:
            if message["type"] == "http.response.start":
                header = (MODE_HEADER.encode(), VULNERABLE.encode())
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_mode)


def install(app: FastAPI, propagation: Propagation, *, service: str, weakened: Overrides) -> bool:
    """In forward mode: weaken ``app``'s checks, stamp its responses, warn at start-up.

    ``weakened`` maps each secure dependency to its forward-mode stand-in (the
    service's ``forwarding.WEAKENED``). Call it in ``create_app`` after the
    routes are included; in exchange mode it does nothing. Returns whether
    forward mode was installed.
    """
    if propagation is not Propagation.FORWARD:
        return False
    app.dependency_overrides.update(weakened)
    app.add_middleware(VulnerableModeHeader)
    _warn_when_started(app, service)
    return True


def _warn_when_started(app: FastAPI, service: str) -> None:
    """Log the warning once the service's own lifespan has started (and configured logs)."""
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with started(app) as state:
            warn_loudly(service)
            yield state

    app.router.lifespan_context = lifespan
