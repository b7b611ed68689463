"""The event envelope, the topic names, and the trace headers every Kafka record carries.

DESIGN.md ("Order flow") fixes the contract: an event is a JSON envelope of
``event_id`` (a UUID), ``type``, ``occurred_at`` (RFC 3339, UTC),
``producer``, ``subject`` (the user the event is about, or null) and
``data`` (an object). Trace context is not part of the envelope: it travels
in the record headers ``traceparent`` (W3C Trace Context) and
``x-request-id``, as it does on an HTTP hop.

Parsing is strict because a consumer must be able to tell a message it
cannot ever handle (a *poison message*, sent straight to the DLQ) from a
handler that failed this time (retried). Unknown top-level fields are
ignored, so a producer can add a field without poisoning older consumers.

No bearer token ever travels in a message (DESIGN.md): :meth:`Envelope.new`
refuses data that carries one, and :meth:`Envelope.parse` treats a message
with one in any field as poison, so a token that slipped in is never acted
on, stored or logged.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)

from .tracing import outgoing_headers

ORDER_PLACED = "order.placed"
ORDER_CONFIRMED = "order.confirmed"
ORDER_CANCELLED = "order.cancelled"
PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_FAILED = "payment.failed"
# Not in DESIGN.md's list: billing gives back a payment whose order was cancelled first.
PAYMENT_REFUNDED = "payment.refunded"

ALL_TOPICS: tuple[str, ...] = (
    ORDER_PLACED,
    ORDER_CONFIRMED,
    ORDER_CANCELLED,
    PAYMENT_SUCCEEDED,
    PAYMENT_FAILED,
    PAYMENT_REFUNDED,
)
"""The event topics of DESIGN.md, plus ``payment.refunded``; each has a dead-letter topic,
see :func:`dlq`."""

MAX_ENVELOPE_BYTES = 64 * 1024
"""Events are notifications, not documents: anything bigger is refused (and poison)."""

TRACEPARENT_HEADER = "traceparent"
REQUEST_ID_HEADER = "x-request-id"

RecordHeaders = list[tuple[str, bytes]]
"""Kafka record headers as aiokafka takes and gives them."""


def dlq(topic: str) -> str:
    """The dead-letter topic for ``topic``: where what cannot be handled ends up."""
    return f"{topic}.dlq"


class PoisonMessage(Exception):
    """A message that no retry can make handleable; it goes to the DLQ with ``reason``.

    Raised by :meth:`Envelope.parse`; a handler may raise it too when the
    event's ``data`` is unusable, to skip the retries.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DependencyUnavailable(Exception):
    """A service or database the handler needs did not answer; the event is fine.

    Raised (or subclassed) by a handler's client of another service when that
    service is down, times out, answers 5xx, or gives no usable answer this
    time. The consumer retries the event with backoff for as long as it takes
    (the partition waits, so order is kept) and never dead-letters it for
    this: an outage is not bad input, and a good event in the DLQ is an order
    never charged or a customer never told.
    """


class NoEffect(Exception):
    """The handler changed nothing: the event is not recorded as processed.

    Raised by a handler when the event turned out to be untrue (its owner does
    not confirm it) or already true (nothing left to do). The consumer rolls
    the session back, commits the offset, and neither retries nor dead-letters.
    Not recording the ``event_id`` matters: event ids are visible to anyone
    who can read the topic, so a forged event may carry the id of a genuine
    one not handled yet; had the forgery's id been recorded, the genuine
    event would later be skipped as a duplicate. Only an event that had an
    effect is recorded, so only the effect is made idempotent.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# A JWS/JWT in compact form: base64url('{"...') "." base64url('{"...') "." (RFC 7515 §7.1).
_JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.")
# "Bearer <b64token>" as in an Authorization header (RFC 6750 §2.1).
_BEARER = re.compile(r"\bbearer\s+[A-Za-z0-9\-._~+/]{20,}", re.IGNORECASE)
_TOKEN_KEYS = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "subject_token",
        "actor_token",
        "bearer",
        "jwt",
        "authorization",
        "proxy_authorization",
    }
)


def _token_key(key: str) -> bool:
    normalized = key.strip().lower().replace("-", "_")
    return normalized in _TOKEN_KEYS or normalized.endswith("_token")


def _token_value(value: str) -> bool:
    return _JWT_SHAPE.search(value) is not None or _BEARER.search(value) is not None


def find_bearer_token(value: Any, path: str = "data") -> str | None:
    """Where in ``value`` something looks like a bearer token (a path), or None.

    Looks at every key and string, however deeply nested: a key named like a
    token (``token``, ``access_token``, ``*_token``, ``authorization``), a
    JWT-shaped string, or ``Bearer <token>``. The token itself is never part
    of the answer, so the answer can be logged.
    """
    if isinstance(value, str):
        return path if _token_value(value) else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            child = f"{path}.{key}"
            if isinstance(key, str) and _token_value(key):
                return f"{path} (a key)"  # the key is the token: name no part of it
            if isinstance(key, str) and _token_key(key):
                return child
            found = find_bearer_token(item, child)
            if found:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_bearer_token(item, f"{path}[{index}]")
            if found:
                return found
    return None


class Envelope(BaseModel):
    """One event, as it travels in a Kafka record's value (JSON, UTF-8)."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    event_id: str
    type: str = Field(min_length=1, max_length=200)
    occurred_at: AwareDatetime
    producer: str = Field(min_length=1, max_length=200)
    subject: str | None = Field(max_length=200)
    data: dict[str, Any]

    @field_validator("event_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError("must be a UUID") from None

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+14:00 is valid RFC 3339, but not in UTC
            raise ValueError("out of range in UTC") from None

    @field_serializer("occurred_at")
    def _rfc3339(self, value: datetime) -> str:
        return value.isoformat(timespec="microseconds").replace("+00:00", "Z")

    @classmethod
    def new(
        cls,
        type: str,
        producer: str,
        subject: str | None,
        data: Mapping[str, Any],
        *,
        event_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        """A new event, now, with a fresh id.

        Raises ValueError when ``data`` is not JSON, carries anything that
        looks like a bearer token, or makes the envelope bigger than
        :data:`MAX_ENVELOPE_BYTES` (a consumer would only dead-letter it).
        ``data`` goes through JSON once, so the envelope built here equals
        the one a consumer parses.
        """
        for path, value in (("subject", subject), ("data", data)):
            found = find_bearer_token(value, path)
            if found:
                raise ValueError(
                    f"refusing to put a bearer token in an event ({found}): "
                    "no bearer token ever travels in a message"
                )
        try:
            plain = orjson.loads(orjson.dumps(dict(data)))
        except TypeError as exc:
            raise ValueError(f"event data must be JSON: {exc}") from None
        envelope = cls(
            event_id=event_id or str(uuid.uuid4()),
            type=type,
            occurred_at=occurred_at or datetime.now(UTC),
            producer=producer,
            subject=subject,
            data=plain,
        )
        size = len(envelope.to_bytes())
        if size > MAX_ENVELOPE_BYTES:
            raise ValueError(f"event is {size} bytes; the limit is {MAX_ENVELOPE_BYTES}")
        return envelope

    @classmethod
    def parse(cls, raw: bytes | None) -> Envelope:
        """The envelope in a record's value, or :class:`PoisonMessage` saying what is wrong.

        The reason names fields and problems, never the values, so it can go
        into logs and DLQ headers.
        """
        if raw is None or len(raw) == 0:
            raise PoisonMessage("empty message")
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise PoisonMessage(f"oversized: {len(raw)} bytes > {MAX_ENVELOPE_BYTES}")
        try:
            envelope = cls.model_validate_json(raw)
        except ValidationError as exc:
            raise PoisonMessage(_describe(exc)) from None
        found = _bearer_token_in(raw)
        if found:
            raise PoisonMessage(f"carries what looks like a bearer token at {found}")
        return envelope

    def to_bytes(self) -> bytes:
        """The record value: compact JSON, UTF-8."""
        return self.model_dump_json().encode()


def _bearer_token_in(raw: bytes) -> str | None:
    """Where in the envelope (any field, known or not) a bearer token seems to be, or None.

    Every field, not only ``subject`` and ``data``: ``type`` and ``producer`` are
    logged, and a field this version ignores still travels on with the record.
    """
    body = orjson.loads(raw)  # valid JSON object: the envelope was parsed from it
    for key, value in body.items():
        if _token_value(key):
            return "envelope (a key)"  # the key is the token: name no part of it
        found = key if _token_key(key) else find_bearer_token(value, key)
        if found:
            return found
    return None


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        location = ".".join(str(part) for part in item["loc"]) or "envelope"
        problems.append(f"{location}: {item['msg']}")
    return "invalid envelope: " + "; ".join(problems[:5])


def trace_headers() -> RecordHeaders:
    """Record headers carrying the current trace context (none outside one)."""
    return [(name, value.encode()) for name, value in outgoing_headers().items()]


def header(headers: Iterable[tuple[str, bytes | None]] | None, name: str) -> str | None:
    """A record header's value as text (the last one wins), or None if absent or not UTF-8."""
    found: str | None = None
    for key, value in headers or ():
        if key.lower() == name and value is not None:
            try:
                found = value.decode()
            except UnicodeDecodeError:
                found = None
    return found
