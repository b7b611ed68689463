"""The trace context of the work in progress (an HTTP request or a Kafka event)."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TraceContext:
    request_id: str
    trace_id: str
    span_id: str  # this service's span: the parent of every call it makes
    sampled: bool = True

    def traceparent(self) -> str:
        """W3C Trace Context §3.2 ``traceparent`` for calls made from here."""
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"


_current: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "trace_context", default=None
)


def current() -> TraceContext | None:
    return _current.get()


def enter(context: TraceContext) -> contextvars.Token[Any]:
    return _current.set(context)


def leave(token: contextvars.Token[Any]) -> None:
    _current.reset(token)
