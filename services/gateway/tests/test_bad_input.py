"""Hostile input at the public edge: a clear 4xx problem, never a 500 (DESIGN.md, Conventions)."""

from __future__ import annotations

import json

import httpx
import pytest
from auth_testing import Login
from gateway_testing import assert_problem, bearer
from hopkit.testing import ServerThread, in_chunks

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
    assert_problem(response, 413)


def test_an_oversized_chunked_body_is_413(
    http: httpx.Client, gateway: ServerThread, alice: Login
) -> None:
    response = http.post(
        "/api/orders",
        content=in_chunks(oversized_order(gateway)),
        headers={"Content-Type": "application/json", **bearer(alice.access_token)},
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)


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
