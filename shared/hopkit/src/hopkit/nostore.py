"""``Cache-Control: no-store`` on every answer to a request that carried a credential.

An answer made for one bearer (their orders, invoices, a customer's contact
details) must not be kept by a browser's cache or a shared cache between it
and the client, where the next user of the machine or the proxy could read
it (RFC 9111 §5.2.2.5; RFC 6750 §5.3 for bearer tokens in general; OWASP's
REST guidance says the same for APIs). Responses that set their own
``Cache-Control`` keep it: the JWKS and discovery documents are public and
meant to be cached, and they are not asked for with a credential anyway.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NO_STORE = (b"cache-control", b"no-store")
#: Headers that make a request one made for a particular caller.
_CREDENTIAL_HEADERS = frozenset({b"authorization", b"dpop", b"cookie"})


class NoStoreMiddleware:
    """Pure ASGI: adds ``Cache-Control: no-store`` to answers to credentialed requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _carries_credential(scope):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_no_store)


def _carries_credential(scope: Scope) -> bool:
    return any(name.lower() in _CREDENTIAL_HEADERS for name, _ in scope["headers"])
