"""Broadcast text is refused at the edge when it would read differently than it is stored.

The rule is hopkit.text's, the one notification (the owner) applies too. The
refusals are checked against a gateway whose notification service is not
there: a 422 from it can only be the gateway's own (a relay would be a 5xx).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from auth_testing import Login
from gateway_testing import StartGateway, assert_problem, bearer, dead_url

REFUSED = {
    "right-to-left-override": "invoice_\u202egpj.exe",
    "isolates": "refund \u2066approved\u2069",
    "zero-width-joiner": "pass\u200dword",
    "zero-width-space": "zero\u200bwidth",
    "NUL": "NUL\x00inside",
    "escape": "escape\x1b[31m",
    "carriage-return": "carriage\rreturn",
    "line-separator": "one\u2028line",
    "blank": " \n\t ",
}


@pytest.fixture(scope="module")
def edge_alone(start_gateway: StartGateway) -> Iterator[httpx.Client]:
    """A gateway with no notification service behind it."""
    server = start_gateway(notification_url=dead_url())
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


@pytest.mark.parametrize("message", REFUSED.values(), ids=REFUSED.keys())
def test_hidden_or_control_characters_are_refused_at_the_edge(
    edge_alone: httpx.Client, carol: Login, message: str
) -> None:
    response = edge_alone.post(
        "/api/broadcasts", json={"message": message}, headers=bearer(carol.access_token)
    )
    problem = assert_problem(response, 422)
    assert ["body", "message"] in [error["loc"] for error in problem["errors"]], problem
    assert message not in response.text


def test_good_text_gets_past_the_edge_to_the_missing_service(
    edge_alone: httpx.Client, carol: Login
) -> None:
    # What makes the refusals above the edge's own: good text is sent on.
    response = edge_alone.post(
        "/api/broadcasts", json={"message": "Grüße\nこんにちは"}, headers=bearer(carol.access_token)
    )
    problem = assert_problem(response, 503, "downstream-unavailable")
    assert problem["service"] == "notification"


@pytest.mark.parametrize(
    "text",
    ["Grüße\nこんにちは", "Line one.\n\tLine two, indented.", "שלום — مرحبا"],
    ids=["german-japanese", "lines-and-tab", "hebrew-arabic"],
)
def test_multi_line_text_in_any_script_reaches_every_customer(
    http: httpx.Client, carol: Login, alice: Login, text: str
) -> None:
    message = f"{text}\n({time.monotonic_ns()})"
    response = http.post(
        "/api/broadcasts", json={"message": f" {message}\n"}, headers=bearer(carol.access_token)
    )
    assert response.status_code == 201, response.text
    assert response.json()["message"] == message  # trimmed, otherwise as written
    notes = http.get("/api/notifications", headers=bearer(alice.access_token)).json()
    assert message in [n["message"] for n in notes]
