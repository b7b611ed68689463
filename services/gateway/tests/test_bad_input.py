"""Hostile input at the public edge: a clear 4xx problem, never a 500 (DESIGN.md, Conventions)."""

from __future__ import annotations

import json

import httpx
import pytest
from auth_testing import Login
from gateway_testing import access_lines, assert_problem, bearer
from hopkit.testing import ServerThread, in_chunks
from shop_testing import Shop

ORDER = {"items": [{"product_id": 1, "quantity": 1}], "card": "4242424242424242"}


def oversized_order(gateway: ServerThread) -> bytes:
    limit: int = gateway.app.state.settings.max_body_bytes
    return json.dumps({**ORDER, "pad": "x" * limit}).encode()


@pytest.mark.parametrize("signed_in", [True, False], ids=["with-token", "without-token"])
def test_an_oversized_body_is_413_before_it_is_read(
    http: httpx.Client, gateway: ServerThread, alice: Login, signed_in: bool
) -> None:
    # FastAPI reads a JSON body before any dependency runs, the token check included.
    headers = {
        "Content-Type": "application/json",
        **(bearer(alice.access_token) if signed_in else {}),
    }
    response = http.post("/api/orders", content=oversized_order(gateway), headers=headers)
    body = assert_problem(response, 413)
    limit = gateway.app.state.settings.max_body_bytes
    assert body["detail"] == f"the request body is larger than {limit} bytes"


def test_an_oversized_chunked_body_is_413(
    http: httpx.Client, gateway: ServerThread, alice: Login
) -> None:
    response = http.post(
        "/api/orders",
        content=in_chunks(oversized_order(gateway)),
        headers={"Content-Type": "application/json", **bearer(alice.access_token)},
    )
    assert "content-length" not in response.request.headers
    body = assert_problem(response, 413)
    # Counted as it came in, not declared: the same detail all the same.
    limit = gateway.app.state.settings.max_body_bytes
    assert body["detail"] == f"the request body is larger than {limit} bytes"


@pytest.mark.parametrize(
    "request_id",
    [b"caf\xe9", b"\xc3\xa9t\xc3\xa9", b"id-\xff"],
    ids=["latin-1", "utf-8", "high-byte"],
)
def test_a_non_ascii_request_id_does_not_break_downstream_calls(
    gateway: ServerThread, request_id: bytes
) -> None:
    # The id is passed on to every service called; httpx sends ASCII header values only.
    with httpx.Client(base_url=gateway.base_url, timeout=10) as client:
        response = client.get(
            "/api/products",
            headers=[(b"x-request-id", request_id)],
        )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"].isascii()


def test_more_lines_than_order_accepts_are_refused_at_the_edge(
    http: httpx.Client, alice: Login
) -> None:
    # Order accepts at most 50 lines: the gateway refuses more itself, with no hop at all.
    def downstream_calls() -> int:
        counts = http.get("/stats").json()["token_exchange"]
        return int(counts["hits"]) + int(counts["misses"])

    before = downstream_calls()
    lines = [{"product_id": n, "quantity": 1} for n in range(1, 52)]
    response = http.post(
        "/api/orders", json={**ORDER, "items": lines}, headers=bearer(alice.access_token)
    )
    body = assert_problem(response, 422)
    assert [error["loc"] for error in body["errors"]] == [["body", "items"]]
    assert downstream_calls() == before


def test_a_token_pasted_into_a_path_is_not_logged(
    http: httpx.Client, shop: Shop, alice: Login
) -> None:
    # The access lines have the path (never the query string): a token there is redacted.
    token = alice.access_token
    with access_lines() as lines:
        at_the_edge = http.get(f"/api/nope/{token}")
        behind = httpx.get(f"{shop.order.base_url}/orders/{token}", timeout=10)
        lines.wait_for("/api/nope/[redacted]", "/orders/[redacted]")
    assert at_the_edge.status_code == 404
    assert 400 <= behind.status_code < 500
    logged = json.dumps(lines.lines)
    assert "eyJ" not in logged
    assert token.split(".")[2] not in logged  # nor its signature on its own


def test_a_refresh_token_as_an_order_id_is_not_logged_at_either_hop(
    http: httpx.Client, alice: Login
) -> None:
    # A refresh token passes the gateway's order-id check (the leading letter: the id
    # may not start with "-" or "_", as one token in 32 does), so it goes one hop on.
    order_id = "r" + alice.refresh_token
    with access_lines() as lines:
        response = http.get(f"/api/orders/{order_id}", headers=bearer(alice.access_token))
        lines.wait_for("/api/orders/[redacted]", "/orders/[redacted]")
    assert_problem(response, 404)
    assert alice.refresh_token not in json.dumps(lines.lines)


def test_a_token_as_a_json_key_is_not_echoed_in_the_422(http: httpx.Client, alice: Login) -> None:
    token = alice.access_token
    response = http.post(
        "/api/orders", json={**ORDER, token: 1}, headers=bearer(alice.access_token)
    )
    body = assert_problem(response, 422)
    assert body["errors"] == [
        {"loc": ["body", "[redacted]"], "msg": "Extra inputs are not permitted"}
    ]
    assert "eyJ" not in response.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_json_sent_as_another_media_type_is_a_415(
    http: httpx.Client, alice: Login, content_type: str | None
) -> None:
    # curl -d sends form-urlencoded unless told otherwise: a 422 about "a valid
    # dictionary" would not say what is wrong.
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = http.post(
        "/api/orders",
        content=json.dumps(ORDER).encode(),
        headers={**headers, **bearer(alice.access_token)},
    )
    body = assert_problem(response, 415)
    assert body["detail"] == "Content-Type must be application/json."
