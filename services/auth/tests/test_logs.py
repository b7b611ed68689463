"""No token, code, secret or password ever reaches a log line or an error body."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from auth_testing import authorization_code, exchange, redeem
from hopkit.logs import JsonFormatter, configure_logging


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("authlib").level)
    # The service's own logging set-up, at DEBUG, plus pytest's capture.
    configure_logging("auth", "DEBUG")
    root.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    try:
        yield caplog
    finally:
        root.handlers[:], level, authlib_level = saved
        root.setLevel(level)
        logging.getLogger("authlib").setLevel(authlib_level)


def test_flows_leave_no_secret_in_logs_or_errors(
    http: httpx.Client, captured: pytest.LogCaptureFixture
) -> None:
    secrets: list[str] = ["alice-dev-password", "gateway-dev-secret", "web-dev-secret"]
    code, verifier = authorization_code(http, "alice")
    body = redeem(http, code, verifier).json()
    secrets += [code, verifier, body["access_token"], body["refresh_token"]]
    swapped = exchange(http, "gateway", body["access_token"], "order", "orders:read").json()
    secrets.append(swapped["access_token"])
    refreshed = http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": "web",
        },
    ).json()
    secrets += [refreshed["access_token"], refreshed["refresh_token"]]

    # Failures too: a replayed code, a reused refresh token, a forged subject token.
    errors = [
        redeem(http, code, verifier),
        http.post(
            "/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": body["refresh_token"],
                "client_id": "web",
            },
        ),
        exchange(http, "gateway", body["access_token"][:-4] + "AAAA", "order", "orders:read"),
        exchange(http, "gateway", "not.a-token." + "x" * 40, "order", "orders:read"),
    ]
    for response in errors:
        assert 400 <= response.status_code < 500
        for secret in secrets:
            assert secret not in response.text

    formatter = JsonFormatter("auth")
    # This process also runs the test's HTTP client, whose DEBUG traces show what it sent.
    server_records = [r for r in captured.records if not r.name.startswith(("httpx", "httpcore"))]
    lines = [formatter.format(record) for record in server_records]
    assert any("token_exchanged" in line for line in lines), "the exchange must be audited"
    for line in lines:
        for secret in secrets:
            assert secret not in line, f"secret leaked into a log line: {line[:200]}"
    # Authlib logs issued tokens at DEBUG; the service's set-up keeps it at INFO.
    assert not [r for r in captured.records if r.name.startswith("authlib") and r.levelno < 20]
