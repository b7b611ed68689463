"""client_secret_basic decoding (RFC 6749 §2.3.1): form-urlencoded, then Basic."""

from __future__ import annotations

import base64

import pytest
from auth_service.oauth.client_auth import basic_credentials
from authlib.oauth2.rfc6749.errors import InvalidClientError


def header(user_pass: str) -> str:
    return "Basic " + base64.b64encode(user_pass.encode("utf-8")).decode("ascii")


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("gateway:gateway-dev-secret", ("gateway", "gateway-dev-secret")),
        # Appendix B: a space is "+", a literal "+" is "%2B" (what hopauth's TokenClient sends).
        ("my+client:s3cret+with+space", ("my client", "s3cret with space")),
        ("gateway:a%2Bb%3Ac", ("gateway", "a+b:c")),
        ("gateway:%C3%A9", ("gateway", "\u00e9")),
        ("gateway:", ("gateway", "")),
    ],
)
def test_credentials_are_form_urldecoded(sent: str, expected: tuple[str, str]) -> None:
    assert basic_credentials(header(sent)) == expected


@pytest.mark.parametrize(
    "value",
    [header("no-colon"), header(":secret"), header("gateway:%FF"), "Basic not*base64"],
)
def test_malformed_credentials_are_invalid_client(value: str) -> None:
    with pytest.raises(InvalidClientError):
        basic_credentials(value)


def test_other_schemes_are_not_basic_credentials() -> None:
    assert basic_credentials("Bearer abc") is None
    assert basic_credentials(None) is None
