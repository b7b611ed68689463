"""Request ids and W3C Trace Context, created at the edge and carried through every hop.

The middleware takes ``X-Request-ID`` and ``traceparent`` (W3C Trace Context
§3.2) from the incoming request or makes them, keeps them in context
variables for the logs, and echoes the request id. :func:`outgoing_headers`
gives what a downstream HTTP call or a Kafka event must carry on.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import context as _context
from .context import TraceContext
from .logs import access_logger, begin_annotations, end_annotations
from .redact import redact_credentials

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16


def current() -> TraceContext | None:
    return _context.current()


def outgoing_headers() -> dict[str, str]:
    """Headers for a downstream call (or a Kafka event) made while handling this request."""
    context = _context.current()
    if context is None:
        return {}
    return {"x-request-id": context.request_id, "traceparent": context.traceparent()}


def parse_traceparent(value: str | None) -> tuple[str, bool] | None:
    """(trace id, sampled) from a valid version-00 ``traceparent``, else None."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None or match.group(1) == _INVALID_TRACE or match.group(2) == _INVALID_SPAN:
        return None
    return match.group(1), int(match.group(3), 16) & 1 == 1


def _usable_request_id(value: str | None) -> str | None:
    """``value`` if it can be logged and sent on as an ``x-request-id`` header, else None.

    Printable ASCII only (RFC 9110 §5.5 field values are ASCII in practice): httpx
    refuses to send anything else, so a hostile id would fail every downstream call.
    Nothing shaped like a token either: the id is on every log line of the request.
    """
    if (
        value
        and len(value) <= 64
        and value.isascii()
        and value.isprintable()
        and redact_credentials(value) == value
    ):
        return value
    return None


def start(request_id: str | None, traceparent: str | None) -> contextvars.Token[Any]:
    """Enter a trace context (also used by Kafka consumers for each event)."""
    parsed = parse_traceparent(traceparent)
    trace_id, sampled = parsed if parsed else (secrets.token_hex(16), True)
    context = TraceContext(
        request_id=_usable_request_id(request_id) or trace_id[:16],
        trace_id=trace_id,
        span_id=secrets.token_hex(8),
        sampled=sampled,
    )
    return _context.enter(context)


def reset(token: contextvars.Token[Any]) -> None:
    _context.leave(token)


def token_summary(principal: object) -> dict[str, Any]:
    """The claims of a validated token worth a log line, read by duck typing.

    ``principal`` is whatever the auth layer stored on ``request.state.principal``
    (hopauth's ``Principal``: ``token_id``, ``subject``, ``audience``, ``scopes``,
    ``client_id``, ``actors``); the tracing layer does not depend on it. Never the token itself.
    """
    return {
        "jti": getattr(principal, "token_id", None),
        "sub": getattr(principal, "subject", None),
        "aud": list(getattr(principal, "audience", None) or ()),
        "scope": sorted(getattr(principal, "scopes", None) or ()),
        "client_id": getattr(principal, "client_id", None),
        "act": list(getattr(principal, "actors", None) or ()),  # current actor first
    }


def _principal(scope: Scope) -> object | None:
    state = scope.get("state")
    if isinstance(state, Mapping):
        return state.get("principal")
    return getattr(state, "principal", None) if state is not None else None


class TracingMiddleware:
    """Pure ASGI: request id and trace context in, request id out, one log line per request.

    The line has the path, with anything shaped like a token in it replaced by
    ``[redacted]`` (:mod:`hopkit.redact`), and never the query string. It carries
    whatever the request's code added with :func:`hopkit.logs.annotate`; a
    request with annotations is logged even when the plain access log is off,
    so an audit trail never is. When the
    request was authenticated (a principal on ``request.state``), the line also
    carries the token's claims as ``token`` (see :func:`token_summary`).
    """

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log
        # Request ids need to be unique, not secret: a per-process prefix and a counter.
        self._prefix = os.urandom(4).hex()
        self._counter = itertools.count(1)
        self._log = access_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = _usable_request_id(incoming) or f"{self._prefix}-{next(self._counter):x}"
        trace_token = start(request_id, headers.get(b"traceparent", b"").decode("latin-1"))
        # W3C Trace Context Level 2 `traceresponse`: the caller learns the trace id, which
        # `hopshop logs --trace` takes, without having sent a traceparent of its own.
        context = _context.current()
        traceresponse = context.traceparent().encode() if context is not None else None
        annotations, annotations_token = begin_annotations()
        started = time.perf_counter()
        status = 500
        # Starlette keeps request.state in scope["state"]; make sure the dict the app
        # writes the principal into is the one this middleware reads afterwards.
        scope.setdefault("state", {})

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                    *([(b"traceresponse", traceresponse)] if traceresponse else []),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log or annotations:
                extra: dict[str, Any] = {
                    "method": scope["method"],
                    "path": redact_credentials(scope["path"]),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                    **annotations,
                }
                principal = _principal(scope)
                if principal is not None:
                    extra["token"] = token_summary(principal)
                self._log.log(logging.INFO, "request", extra=extra)
            end_annotations(annotations_token)
            reset(trace_token)
