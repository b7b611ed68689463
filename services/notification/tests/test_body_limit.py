"""A body over hopkit's cap is a 413 before FastAPI reads it, token or none (RFC 9110 §15.5.14)."""

from __future__ import annotations

import json

import httpx
import pytest
from hopkit.bodylimit import DEFAULT_MAX_BYTES
from hopkit.testing import in_chunks
from notification_service.models import MAX_MESSAGE
from notification_testing import assert_problem, bearer

#: The largest broadcast there is: every character outside the BMP, sent \u-escaped
#: (12 bytes of JSON each).
LARGEST = json.dumps({"message": "\U0001f600" * MAX_MESSAGE}, ensure_ascii=True).encode()


def test_the_largest_broadcast_is_far_below_the_cap_and_accepted(
    http: httpx.Client, gateway: str
) -> None:
    assert len(LARGEST) * 4 < DEFAULT_MAX_BYTES
    response = http.post(
        "/broadcasts",
        content=LARGEST,
        headers={"Content-Type": "application/json", **bearer(gateway)},
    )
    assert response.status_code == 201, response.text
    assert response.json()["message"] == "\U0001f600" * MAX_MESSAGE


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_an_oversized_broadcast_without_a_token_is_413(http: httpx.Client, chunked: bool) -> None:
    # Uncapped, FastAPI would read and parse all of it, then say 401.
    body = json.dumps({"message": "x" * DEFAULT_MAX_BYTES}).encode()
    response = http.post(
        "/broadcasts",
        content=in_chunks(body) if chunked else body,
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 413)
    assert "x-request-id" in response.headers  # inside the tracing: logged with its id
