"""The event envelope: strict parsing (poison messages), the bearer-token guard, topics."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hopkit import tracing
from hopkit.events import (
    ALL_TOPICS,
    MAX_ENVELOPE_BYTES,
    ORDER_PLACED,
    Envelope,
    PoisonMessage,
    dlq,
    header,
    trace_headers,
)

# A syntactically JWT-shaped string ({"alg":"none"}.{"sub":"alice"}.), never a real token.
JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.c2ln"


def valid() -> dict[str, Any]:
    return json.loads(Envelope.new(ORDER_PLACED, "order", "alice", {"order_id": "o-1"}).to_bytes())


def test_new_then_parse_gives_the_same_envelope() -> None:
    envelope = Envelope.new(
        ORDER_PLACED, "order", "alice", {"order_id": "o-1", "items": [{"sku": "A", "n": 2}]}
    )
    raw = envelope.to_bytes()
    assert Envelope.parse(raw) == envelope
    body = json.loads(raw)
    assert set(body) == {"event_id", "type", "occurred_at", "producer", "subject", "data"}
    assert str(uuid.UUID(body["event_id"])) == body["event_id"]
    assert body["occurred_at"].endswith("Z")
    assert body["subject"] == "alice"


def test_occurred_at_is_kept_in_utc_and_subject_may_be_null() -> None:
    body = valid()
    body["occurred_at"] = "2026-01-02T03:04:05+02:00"
    body["subject"] = None
    envelope = Envelope.parse(json.dumps(body).encode())
    assert envelope.occurred_at == datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert envelope.subject is None


def test_unknown_fields_are_ignored_so_producers_can_add_some() -> None:
    body = {**valid(), "schema": 2}
    assert Envelope.parse(json.dumps(body).encode()).type == ORDER_PLACED


def _without(field: str) -> bytes:
    body = valid()
    del body[field]
    return json.dumps(body).encode()


def _with(**fields: Any) -> bytes:
    return json.dumps({**valid(), **fields}).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"not json", "Invalid JSON"),
        (b"\xff\xfe\x00", "Invalid JSON"),
        (b"[1, 2]", "object"),
        (b'"a string"', "object"),
        (_without("event_id"), "event_id: Field required"),
        (_without("type"), "type: Field required"),
        (_without("occurred_at"), "occurred_at: Field required"),
        (_without("producer"), "producer: Field required"),
        (_without("subject"), "subject: Field required"),
        (_without("data"), "data: Field required"),
        (_with(event_id=42), "event_id"),
        (_with(event_id="not-a-uuid"), "event_id"),
        (_with(type=""), "type"),
        (_with(type=7), "type"),
        (_with(producer=None), "producer"),
        (_with(subject=5), "subject"),
        (_with(occurred_at="yesterday"), "occurred_at"),
        (_with(occurred_at="2026-01-02T03:04:05"), "occurred_at"),
        (_with(occurred_at=1767323045), "occurred_at"),
        (_with(data=[1, 2]), "data"),
        (_with(data="x"), "data"),
        (_with(data=None), "data"),
        (_with(data={"pad": "x" * MAX_ENVELOPE_BYTES}), "oversized"),
        (
            _with(data={"user": {"access_token": "opaque"}}),
            "bearer token at data.user.access_token",
        ),
        (_with(data={"note": f"Bearer {JWT}"}), "bearer token at data.note"),
        (_with(subject=JWT), "bearer token at subject"),
    ],
)
def test_malformed_messages_are_poison_with_a_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(PoisonMessage) as caught:
        Envelope.parse(raw)
    assert reason in caught.value.reason
    assert "x" * 100 not in caught.value.reason  # reasons name problems, not values


@pytest.mark.parametrize(
    ("subject", "data"),
    [
        ("alice", {"token": "opaque-value"}),
        ("alice", {"Access-Token": "opaque"}),
        ("alice", {"headers": {"Authorization": "whatever"}}),
        ("alice", {"refresh_token": "r"}),
        ("alice", {"nested": [{"deep": {"payment_token": "p"}}]}),
        ("alice", {"note": f"forwarded {JWT} by mistake"}),
        ("alice", {"note": "Bearer abcdefghijklmnopqrstuvwxyz"}),
        ("alice", {JWT: 1}),
        (JWT, {}),
    ],
)
def test_no_bearer_token_travels_in_a_message(subject: str, data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="bearer token"):
        Envelope.new(ORDER_PLACED, "order", subject, data)


def test_ordinary_data_passes_the_token_guard() -> None:
    data = {
        "order_id": "o-1",
        "tokens_used": 3,
        "note": "eyJ alone is fine",
        "jti": "abc",
        "memo": "to the bearer",
    }
    assert Envelope.new(ORDER_PLACED, "order", "alice", data).data == data


def test_new_refuses_what_a_consumer_would_dead_letter() -> None:
    with pytest.raises(ValueError, match="JSON"):
        Envelope.new(ORDER_PLACED, "order", None, {"when": object()})
    with pytest.raises(ValueError, match="limit"):
        Envelope.new(ORDER_PLACED, "order", None, {"pad": "x" * MAX_ENVELOPE_BYTES})


def test_new_normalises_data_through_json() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    envelope = Envelope.new(ORDER_PLACED, "order", None, {"when": when, "ids": (1, 2)})
    assert envelope.data == {"when": "2026-01-02T03:04:05+01:00", "ids": [1, 2]}
    assert Envelope.parse(envelope.to_bytes()) == envelope


def test_topics_and_dead_letter_topics() -> None:
    assert ALL_TOPICS == (
        "order.placed",
        "order.confirmed",
        "order.cancelled",
        "payment.succeeded",
        "payment.failed",
        "payment.refunded",
    )
    assert dlq("order.placed") == "order.placed.dlq"


def test_trace_context_travels_in_record_headers() -> None:
    assert trace_headers() == []
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    token = tracing.start("req-1", traceparent)
    try:
        headers = trace_headers()
    finally:
        tracing.reset(token)
    assert header(headers, "x-request-id") == "req-1"
    value = header(headers, "traceparent")
    assert value is not None
    assert value.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert header([("traceparent", b"\xff")], "traceparent") is None
    assert header(None, "traceparent") is None
