"""A body over hopkit's cap is a 413 before FastAPI reads it, token or none (RFC 9110 §15.5.14)."""

from __future__ import annotations

import json

import httpx
import pytest
from hopkit.bodylimit import DEFAULT_MAX_BYTES
from hopkit.testing import in_chunks
from inventory_service.schemas import MAX_ID, MAX_QUANTITY, ReservationIn
from inventory_testing import assert_problem

#: The largest reservation order may ask for: the longest id, 100 lines at their maximum.
LARGEST = {
    "order_id": "o" * 64,
    "items": [{"product_id": MAX_ID, "quantity": MAX_QUANTITY}] * 100,
}


def test_the_largest_reservation_is_far_below_the_cap() -> None:
    ReservationIn.model_validate(LARGEST)
    assert len(json.dumps(LARGEST).encode()) * 10 < DEFAULT_MAX_BYTES


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_an_oversized_reservation_without_a_token_is_413(http: httpx.Client, chunked: bool) -> None:
    # Uncapped, FastAPI would read and parse all of it, then say 401.
    body = json.dumps({**LARGEST, "pad": "x" * DEFAULT_MAX_BYTES}).encode()
    response = http.post(
        "/reservations",
        content=in_chunks(body) if chunked else body,
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 413)
    assert "x-request-id" in response.headers  # inside the tracing: logged with its id
