"""No token, code, secret or password ever reaches a log line or an error body."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import orjson
import pytest
from auth_service.app import create_app
from auth_testing import (
    ServerThread,
    authorization_code,
    exchange,
    free_port,
    login,
    make_settings,
    redeem,
)
from hopkit.logs import JsonFormatter, configure_logging
from hopkit.testing import eventually


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


def test_a_token_pasted_into_a_path_is_not_logged(
    http: httpx.Client,
    tmp_path_factory: pytest.TempPathFactory,
    captured: pytest.LogCaptureFixture,
) -> None:
    """Auth's access line (hopkit's, with its audit fields) has the path, tokens redacted."""
    alice = login(http, "alice")
    port = free_port()
    settings = make_settings(tmp_path_factory.mktemp("auth-access"), port, access_log=True)
    paths = [
        f"/nope/{alice.access_token}",
        f"/authorize/{alice.refresh_token}",
        f"/token/x/Bearer {alice.access_token}/{alice.refresh_token}",
    ]
    with (
        ServerThread(create_app(settings), port) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        for path in paths:
            assert client.get(path).status_code == 404

        def access_lines() -> list[str] | None:
            formatter = JsonFormatter("auth")
            lines = [formatter.format(r) for r in captured.records if r.name == "access"]
            return lines if len(lines) >= len(paths) else None

        lines = eventually(access_lines, "the access lines", timeout=10)
    assert [orjson.loads(line)["path"] for line in lines] == [
        "/nope/[redacted]",
        "/authorize/[redacted]",
        "/token/x/Bearer [redacted]/[redacted]",
    ]
    for line in lines:
        assert "eyJ" not in line and alice.refresh_token not in line, line
