"""The vulnerable teaching mode (``HOPSHOP_PROPAGATION=forward``) made impossible to miss.

In this mode the gateway forwards the user's own token downstream instead of
exchanging it (see :mod:`gateway_service.hops`). A workshop turns it on to show
an attack working; nobody should be able to run it by accident without
noticing: it is refused in production (hopkit's settings), warned about at
start-up, and stamped on every response.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MODE_HEADER = b"x-hopshop-mode"
VULNERABLE = b"vulnerable-forwarding"

WARNING = (
    "!!! HOPSHOP_PROPAGATION=forward: VULNERABLE TEACHING MODE !!! The gateway forwards "
    "users' tokens downstream unchanged instead of exchanging them; any service that "
    "receives one can replay it against every other. Never run this outside a workshop."
)


def warn_loudly() -> None:
    log.warning(WARNING)


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
                message["headers"] = [*message.get("headers", []), (MODE_HEADER, VULNERABLE)]
            await send(message)

        await self.app(scope, receive, send_with_mode)
