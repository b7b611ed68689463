"""A cap on request bodies, before anything reads them (RFC 9110 §15.5.14, 413).

FastAPI reads and parses a JSON body before a route's dependencies run, so
without a cap anyone, with or without a token, can make a service hold a
body of any size in memory (several times over, once parsed). The cap is
checked twice: the declared ``Content-Length`` before the app runs, and the
bytes actually received (a chunked body declares none). Not FastAPI's own
``max_body_size``: on some paths it answers ``text/plain``, not problem+json.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import Problem, RaisedProblem

TITLE = "Content Too Large"
#: The cap for the internal services. Their largest legitimate bodies are a few kB
#: (an order of 50 lines, a 1000-character broadcast); 64 KiB, as at the gateway,
#: leaves room for that many times over and still bounds what a caller can make
#: a service hold. Fixed, not a setting: nothing legitimate needs more.
DEFAULT_MAX_BYTES = 64 * 1024


class BodyLimitMiddleware:
    """Pure ASGI: a request body over ``max_bytes`` is a 413 problem+json."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._problem().response()(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI passes only an HTTPException raised while reading the body
                    # on to the app's handlers: RaisedProblem is one, rendered as this 413.
                    raise RaisedProblem(self._problem())
            return message

        await self.app(scope, limited_receive, send)

    def _problem(self) -> Problem:
        """The same 413, declared length or counted bytes."""
        return Problem(413, TITLE, f"the request body is larger than {self.max_bytes} bytes")
