"""Structured JSON logs with a request id on every line.

Tokens are never logged: code logs ``jti``, ``sub``, ``client_id`` and the
``act`` chain at most. Authlib logs issued tokens at DEBUG, so its logger is
pinned to INFO whatever the root level is.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import sys
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
_annotations: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "log_annotations", default=None
)


def annotate(**fields: Any) -> None:
    """Add fields to this request's log line (one line per request, however much happened).

    Outside a request (no middleware), the fields are logged on a line of their own.
    """
    annotations = _annotations.get()
    if annotations is None:
        logging.getLogger("audit").info("event", extra=fields)
    else:
        annotations.update(fields)


_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "color_message"}
)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: messages and tracebacks can carry request data.
            entry["exc_type"] = record.exc_info[0].__name__
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("authlib").setLevel(max(logging.INFO, root.level))
    # Our middleware writes the access log, with the request id and without query strings.
    logging.getLogger("uvicorn.access").disabled = True


class RequestIdMiddleware:
    """Pure ASGI: takes X-Request-ID (or makes one), echoes it, logs one line per request.

    The line carries whatever the request's code added with :func:`annotate`
    (e.g. who exchanged which token); a request with annotations is logged
    even when the plain access log is off, so the audit trail never is.
    """

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log
        self.log = logging.getLogger("access")
        # Request ids need to be unique, not secret: a per-process prefix and a counter.
        self._prefix = os.urandom(4).hex()
        self._counter = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else None
        request_id = request_id or f"{self._prefix}-{next(self._counter):x}"
        token = request_id_var.set(request_id)
        annotations: dict[str, Any] = {}
        annotations_token = _annotations.set(annotations)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log or annotations:
                self.log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                        **annotations,
                    },
                )
            _annotations.reset(annotations_token)
            request_id_var.reset(token)
