"""Envelope edges found by the poison-message audit: no exception but PoisonMessage, no token
in a reason (reasons go to logs and DLQ headers)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hopkit.events import ORDER_PLACED, Envelope, PoisonMessage, find_bearer_token

# A syntactically JWT-shaped string ({"alg":"none"}.{"sub":"alice"}.), never a real token.
JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.c2ln"


def _with(**fields: Any) -> bytes:
    body = json.loads(Envelope.new(ORDER_PLACED, "order", "alice", {"order_id": "o-1"}).to_bytes())
    return json.dumps({**body, **fields}).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # Valid RFC 3339, but outside what a datetime holds once moved to UTC.
        (_with(occurred_at="0001-01-01T00:00:00+14:00"), "occurred_at: Value error, out of range"),
        (_with(occurred_at="9999-12-31T23:59:59-14:00"), "occurred_at: Value error, out of range"),
        # Every field is logged or travels on, not only subject and data.
        (_with(type=JWT), "bearer token at type"),
        (_with(producer=f"Bearer {JWT}"), "bearer token at producer"),
        (_with(access_token="opaque"), "bearer token at access_token"),
        (_with(extra={"nested": [JWT]}), "bearer token at extra.nested[0]"),
        (_with(**{JWT: 1}), "bearer token at envelope (a key)"),
        (_with(data={"order_id": "o-1", JWT: 1}), "bearer token at data (a key)"),
    ],
)
def test_edge_cases_are_poison_and_their_reasons_carry_no_token(raw: bytes, reason: str) -> None:
    with pytest.raises(PoisonMessage) as caught:
        Envelope.parse(raw)
    assert reason in caught.value.reason
    assert "eyJ" not in caught.value.reason


def test_a_token_used_as_a_key_is_located_without_being_repeated() -> None:
    assert find_bearer_token({"a": {JWT: 1}}) == "data.a (a key)"
    with pytest.raises(ValueError) as caught:
        Envelope.new(ORDER_PLACED, "order", "alice", {JWT: "x"})
    assert "eyJ" not in str(caught.value)
