"""A body over hopkit's cap is a 413 before the app runs, token or none (RFC 9110 §15.5.14).

Billing's API takes no request bodies at all; the cap is there so no route
added later can be made to hold one of any size.
"""

from __future__ import annotations

import httpx
from billing_testing import assert_problem
from hopkit.bodylimit import DEFAULT_MAX_BYTES


def test_an_oversized_body_without_a_token_is_413(http: httpx.Client) -> None:
    # Uncapped, this is a 405: /invoices is GET only.
    response = http.post(
        "/invoices",
        content=b'{"pad": "' + b"x" * DEFAULT_MAX_BYTES + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 413)
    assert "x-request-id" in response.headers  # inside the tracing: logged with its id
