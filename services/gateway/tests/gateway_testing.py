"""Helpers for the gateway tests: settings, tokens, a log capture, problem checks."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from gateway_service.config import Settings
from hopkit.logs import JsonFormatter
from hopkit.testing import ServerThread, eventually, free_port

#: ``start_gateway(**settings)``: a gateway in front of the test services.
StartGateway = Callable[..., ServerThread]

PROBLEMS = "https://hopshop.example/problems/"
PROBLEM_JSON = "application/problem+json"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def make_settings(issuer: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "issuer": issuer,
        "json_logs": False,
        "access_log": True,
        "rate_limit": 1000,
        # The tests share carol and one valkey: test_broadcast_quota.py sets its own quota.
        "broadcast_quota": 1000,
        **overrides,
    }
    return Settings.model_validate(values)


def dead_url() -> str:
    """A loopback URL where nothing listens: a service that is down."""
    return f"http://127.0.0.1:{free_port()}"


@contextmanager
def black_hole() -> Iterator[str]:
    """A loopback URL that accepts connections and never answers: a hung service."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refresh(auth: httpx.Client, refresh_token: str, scope: str) -> str:
    """A new access token for the same session, narrowed to ``scope``."""
    response = auth.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": "web",
            "scope": scope,
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def assert_problem(
    response: httpx.Response, status: int, type_: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if type_ is not None:
        assert body["type"] == (type_ if ":" in type_ else PROBLEMS + type_), body
    assert "Traceback" not in response.text
    return body


class JsonLines(logging.Handler):
    """Formats each record as the services' JSON log line *when it is emitted*.

    Formatting at emit time, in the server's thread, is what puts that
    request's ``request_id`` and ``trace_id`` (context variables) in the line.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.formatter_ = JsonFormatter("test")
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.formatter_.format(record)))

    def requests(self, path: str) -> list[dict[str, Any]]:
        return [
            line for line in self.lines if line.get("msg") == "request" and line.get("path") == path
        ]

    def wait_for(self, *paths: str) -> None:
        """Until each path has its line: a service logs a request just after answering it."""
        # `or None`: eventually() waits while its probe returns None, and False is not None.
        eventually(
            lambda: all(self.requests(path) for path in paths) or None, f"access lines {paths}"
        )


@contextmanager
def access_lines() -> Iterator[JsonLines]:
    """The access log lines of every service in this process while the block runs."""
    handler = JsonLines()
    logger = logging.getLogger("access")
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
