"""Structured JSON logs: one object per line, with the request and trace ids.

Tokens are never logged: code logs ``jti``, ``sub``, ``client_id`` and the
``act`` chain at most. Authlib logs issued tokens at DEBUG, so its logger is
pinned to INFO whatever the root level is. What a caller sent can still reach
a line (the access line's path, a message's arguments), so the formatter passes
the message and every text field through :func:`hopkit.redact.redact_credentials`:
a token pasted into a URL path is logged as ``[redacted]``.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from typing import Any

import orjson

from .context import current
from .redact import redact_credentials

_annotations: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "log_annotations", default=None
)

_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "color_message"}
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


def begin_annotations() -> tuple[dict[str, Any], contextvars.Token[Any]]:
    annotations: dict[str, Any] = {}
    return annotations, _annotations.set(annotations)


def end_annotations(token: contextvars.Token[Any]) -> None:
    _annotations.reset(token)


def access_logger() -> logging.Logger:
    return logging.getLogger("access")


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
            "msg": redact_credentials(record.getMessage()),
        }
        context = current()
        if context is not None:
            entry["request_id"] = context.request_id
            entry["trace_id"] = context.trace_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = redact_credentials(value) if isinstance(value, str) else value
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
    # aiosqlite logs every statement with its parameters at DEBUG: values a client sent
    # (an Idempotency-Key, say) would reach the log even at LOG_LEVEL=DEBUG.
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, root.level))
    # httpx logs every outgoing request at INFO; the callee's access line already has it
    # (same request id), so that second line per hop costs CPU and says nothing new.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    # uvicorn's own lines ("Started server process" ...) go through our JSON handler too.
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # The tracing middleware writes the access log, with the ids and without query strings.
    logging.getLogger("uvicorn.access").disabled = True
