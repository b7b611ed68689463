"""A body over hopkit's cap is a 413 before FastAPI reads it, token or none (RFC 9110 §15.5.14)."""

from __future__ import annotations

import json

import httpx
import pytest
from hopkit.bodylimit import DEFAULT_MAX_BYTES
from hopkit.testing import in_chunks
from order_service.schemas import MAX_ID, MAX_LINES, MAX_QUANTITY, OrderIn
from order_testing import assert_problem

LINE = {"product_id": MAX_ID, "quantity": MAX_QUANTITY}
#: The largest order anyone may place: every line, every number at its maximum.
LARGEST = {"items": [LINE] * MAX_LINES, "card": "4242 4242 4242 4242"}


def test_the_largest_order_is_far_below_the_cap() -> None:
    OrderIn.model_validate(LARGEST)
    assert len(json.dumps(LARGEST).encode()) * 10 < DEFAULT_MAX_BYTES


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_an_oversized_order_without_a_token_is_413(http: httpx.Client, chunked: bool) -> None:
    # Uncapped, FastAPI would read and parse all of it, then say 401.
    body = json.dumps({**LARGEST, "pad": "x" * DEFAULT_MAX_BYTES}).encode()
    response = http.post(
        "/orders",
        content=in_chunks(body) if chunked else body,
        headers={"Content-Type": "application/json"},
    )
    problem = assert_problem(response, 413)
    assert problem["detail"] == f"the request body is larger than {DEFAULT_MAX_BYTES} bytes"
    assert "x-request-id" in response.headers  # inside the tracing: logged with its id
