"""Anything shaped like a token is [redacted] in what the services write back out."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
import uuid

import orjson
import pytest
from hopkit.logs import JsonFormatter
from hopkit.redact import REDACTED, redact_credentials


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: dict[str, object]) -> str:
    """A real-looking signed JWT (RFC 7519 §3): header, claims, 256-byte signature."""
    header = b64url(json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": "k1"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(secrets.token_bytes(256))}"


TOKEN = jwt({"sub": "alice", "aud": "order", "scope": "orders:read", "exp": 2_000_000_000})
OTHER = jwt({"sub": "bob", "aud": "gateway", "exp": 2_000_000_000})
REFRESH = secrets.token_urlsafe(32)  # as the auth service makes refresh tokens
# One with both cases for sure: a random one lacks one with probability ~1e-10.
REFRESH_FIXED = "Zx9_kQ2-vLm8RtY4wPa7cN1dE5fGh3jK6sT0uVbXyZq"


def test_a_jwt_in_a_path_segment_is_redacted() -> None:
    assert redact_credentials(f"/api/nope/{TOKEN}") == f"/api/nope/{REDACTED}"
    assert redact_credentials(f"/orders/{TOKEN}/cancel") == f"/orders/{REDACTED}/cancel"


def test_several_jwts_and_a_pasted_header_value() -> None:
    assert redact_credentials(f"/a/{TOKEN}/b/{OTHER}") == f"/a/{REDACTED}/b/{REDACTED}"
    assert redact_credentials(f"/x/Bearer {TOKEN}") == f"/x/Bearer {REDACTED}"


def test_a_jwt_in_a_query_string_is_redacted() -> None:
    redacted = redact_credentials(f"/orders?access_token={TOKEN}&page=2")
    assert redacted == f"/orders?access_token={REDACTED}&page=2"


@pytest.mark.parametrize(
    "token",
    [
        b64url(b'{"alg":"none"}') + "." + b64url(b'{"sub":"a"}') + ".",  # unsecured: no signature
        ".".join([b64url(b'{"alg":"RSA-OAEP","enc":"A256GCM"}'), "a", "b", "c", "d"]),  # JWE
    ],
    ids=["unsecured", "jwe"],
)
def test_other_compact_serializations_are_redacted(token: str) -> None:
    assert redact_credentials(f"/p/{token}") == f"/p/{REDACTED}"


@pytest.mark.parametrize("token", [REFRESH, REFRESH_FIXED])
def test_an_opaque_refresh_token_is_redacted(token: str) -> None:
    assert len(token) == 43
    assert redact_credentials(f"/refresh/{token}") == f"/refresh/{REDACTED}"
    assert redact_credentials(f"/refresh/{token}/x") == f"/refresh/{REDACTED}/x"


@pytest.mark.parametrize(
    "path",
    [
        f"/orders/ord_{uuid.uuid4().hex}",
        f"/orders/ord_{uuid.uuid4().hex}/cancel",
        f"/invoices/{uuid.uuid4()}",
        f"/blobs/{secrets.token_hex(32)}",  # a 64-hex digest: one case
        "/docs/a-very-long-lowercase-slug-of-a-page-about-shopping-and-more",
        "/products/42",
        "/products/eyJustAWord",  # merely contains eyJ
        "/files/eyJ.txt",
        "/files/eyJabc.def",  # two parts: not a JWS
        "/x/" + "A" * 60,  # one case
        "/x/" + secrets.token_urlsafe(16),  # a jti: 22 characters
        "",
    ],
)
def test_ids_and_ordinary_paths_are_untouched(path: str) -> None:
    assert redact_credentials(path) == path


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("eyJ" * 20_000, REDACTED),  # one long mixed-case run: 18 s without the look-behind
        ("a" * 300_000, "a" * 300_000),
        ("eyJa" + "." * 300_000, REDACTED + "." * (300_000 - 4)),  # empty parts: JWE "dir"
        ("eyJa!" * 60_000, "eyJa!" * 60_000),
    ],
    ids=["eyJ-run", "one-case-run", "dots", "headers-only"],
)
def test_a_long_path_is_scanned_in_linear_time(hostile: str, expected: str) -> None:
    # A path is caller-chosen: no input may make the scan quadratic (seconds, not ms).
    started = time.perf_counter()
    assert redact_credentials(hostile) == expected
    assert time.perf_counter() - started < 0.5


def test_the_json_formatter_redacts_the_message_and_text_fields() -> None:
    record = logging.LogRecord("access", logging.INFO, "", 0, "call %s failed", (TOKEN,), None)
    record.path = f"/api/{TOKEN}"
    record.sid = REFRESH_FIXED
    line = JsonFormatter("test").format(record)
    assert "eyJ" not in line and REFRESH_FIXED not in line
    entry = orjson.loads(line)
    assert entry["msg"] == f"call {REDACTED} failed"
    assert entry["path"] == f"/api/{REDACTED}"
    assert entry["sid"] == REDACTED
