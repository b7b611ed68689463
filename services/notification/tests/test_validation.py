"""Bad input is a 4xx problem that names the field, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from notification_testing import Customer, assert_problem, bearer, notifications


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "message"]),
        ({"message": ""}, ["body", "message"]),
        ({"message": " \n\t "}, ["body", "message"]),
        ({"message": None}, ["body", "message"]),
        ({"message": 12}, ["body", "message"]),
        ({"message": ["hi"]}, ["body", "message"]),
        ({"message": "x" * 1001}, ["body", "message"]),
        ({"message": "NUL\x00inside"}, ["body", "message"]),
        ({"message": "bell\x07"}, ["body", "message"]),
        ({"message": "escape\x1b[31m"}, ["body", "message"]),
        # Text that reads differently than it is stored (hopkit.text): bidi controls
        # (CVE-2021-42574), zero-width characters, line separators.
        ({"message": "invoice_\u202egpj.exe"}, ["body", "message"]),
        ({"message": "refund \u2066approved\u2069"}, ["body", "message"]),
        ({"message": "pass\u200dword"}, ["body", "message"]),
        ({"message": "zero\u200bwidth"}, ["body", "message"]),
        ({"message": "\ufeffBOM"}, ["body", "message"]),
        ({"message": "one\u2028line"}, ["body", "message"]),
        ({"message": "carriage\rreturn"}, ["body", "message"]),
        ({"message": "C1\x85next"}, ["body", "message"]),
        ({"message": "hi", "recipient": "alice"}, ["body", "recipient"]),
    ],
)
def test_malformed_broadcasts_are_422_and_store_nothing(
    http: httpx.Client, gateway: str, alice: Customer, body: dict[str, Any], loc: list[str]
) -> None:
    before = len(notifications(http, alice.token, limit=100))
    response = http.post("/broadcasts", json=body, headers=bearer(gateway))
    problem = assert_problem(response, 422)
    assert loc in [error["loc"] for error in problem["errors"]], problem
    assert len(notifications(http, alice.token, limit=100)) == before


def test_a_lone_surrogate_is_422_and_stores_nothing(
    http: httpx.Client, gateway: str, alice: Customer
) -> None:
    # Valid JSON, not text: half a UTF-16 pair (httpx would refuse to encode it itself).
    before = len(notifications(http, alice.token, limit=100))
    headers = {**bearer(gateway), "content-type": "application/json"}
    response = http.post(
        "/broadcasts", content=rb'{"message": "lone \ud800 half"}', headers=headers
    )
    problem = assert_problem(response, 422)
    assert ["body", "message"] in [error["loc"] for error in problem["errors"]], problem
    assert len(notifications(http, alice.token, limit=100)) == before


@pytest.mark.parametrize(
    "content", [b"", b"{", b"[]", b"null", b'"text"', b"\xff\xfe", b'{"message": "v"' * 100]
)
def test_unparseable_bodies_are_422(http: httpx.Client, gateway: str, content: bytes) -> None:
    headers = {**bearer(gateway), "content-type": "application/json"}
    assert_problem(http.post("/broadcasts", content=content, headers=headers), 422)


@pytest.mark.parametrize(
    "message",
    [
        "Line one.\n\tLine two, indented.",
        "Grüße\nこんにちは",
        "שלום — مرحبا",
        "Sale \u2764\ufe0f e\u0301\u00a0\U0001f600",
    ],
    ids=["lines-and-tab", "german-japanese", "hebrew-arabic", "emoji-and-marks"],
)
def test_multi_line_text_in_any_script_is_stored_as_written(
    http: httpx.Client, gateway: str, alice: Customer, message: str
) -> None:
    response = http.post("/broadcasts", json={"message": message}, headers=bearer(gateway))
    assert response.status_code == 201, response.text
    assert response.json()["message"] == message
    assert message in [n["message"] for n in notifications(http, alice.token, limit=5)]


@pytest.mark.parametrize("limit", ["0", "-1", "101", "ten", "1.5", ""])
def test_a_bad_limit_is_422(http: httpx.Client, alice: Customer, limit: str) -> None:
    response = http.get("/notifications", params={"limit": limit}, headers=bearer(alice.token))
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["query", "limit"]


def test_malformed_bearer_tokens_are_401(http: httpx.Client) -> None:
    for header in (
        "Bearer",
        "Bearer a b",
        "Bearer " + "x" * 10000,
        "Bearer e30.e30.sig",
        "Basic Zm9vOmJhcg==",
    ):
        for response in (
            http.get("/notifications", headers={"Authorization": header}),
            http.post("/broadcasts", json={"message": "hi"}, headers={"Authorization": header}),
        ):
            assert_problem(response, 401)
            assert response.headers["www-authenticate"].startswith('Bearer realm="notification"')


def test_unknown_routes_and_methods_are_problems(http: httpx.Client) -> None:
    assert_problem(http.get("/nope"), 404)
    assert_problem(http.delete("/notifications"), 405)
    assert_problem(http.get("/broadcasts"), 405)
