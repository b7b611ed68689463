"""CORS for the web UI, which redeems its code and refreshes from the browser."""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send


class BrowserCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, stepped around for requests that carry no ``Origin``.

    Only browsers send ``Origin``; the token endpoint's hot path is services
    exchanging tokens, and wrapping every one of their responses cost ~10 µs.
    Nothing is lost: token responses are ``Cache-Control: no-store``, so the
    ``Vary: Origin`` Starlette would add cannot matter to any cache.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and all(name != b"origin" for name, _ in scope["headers"]):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
