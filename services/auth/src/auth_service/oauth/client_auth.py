"""Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``Authorization: Basic`` credentials per RFC 6749 §2.3.1, or None if there are none.

    The id and secret are form-urlencoded before base64 (§2.3.1, Appendix B);
    anything that does not decode strictly is refused, never a server error.
    """
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClientError(
            status_code=401, description="Malformed Basic credentials."
        ) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise InvalidClientError(status_code=401, description="Malformed Basic credentials.")
    try:
        # RFC 6749 §2.3.1: both are form-urlencoded (Appendix B) before Basic encoding,
        # so "+" is a space, as hopauth's TokenClient sends it (quote_plus).
        return unquote_plus(client_id, errors="strict"), unquote_plus(secret, errors="strict")
    except UnicodeDecodeError:
        raise InvalidClientError(
            status_code=401, description="Malformed Basic credentials."
        ) from None


def request_basic_credentials(request: Any) -> tuple[str, str] | None:
    """Parsed once per request: both checks below need them."""
    if not hasattr(request, "basic_credentials"):
        request.basic_credentials = basic_credentials(request.headers.get("Authorization"))
    credentials: tuple[str, str] | None = request.basic_credentials
    return credentials


def authenticate_client_secret_basic(query_client: Callable[[str], Any], request: Any) -> Any:
    credentials = request_basic_credentials(request)
    if credentials is None:
        return None
    client_id, secret = credentials
    client = query_client(client_id)
    if client is None:
        raise InvalidClientError(status_code=401, description="Unknown client.")
    return client if client.check_client_secret(secret) else None


def check_single_auth_method(request: Any) -> None:
    """RFC 6749 §2.3: a client MUST NOT use more than one authentication method."""
    credentials = request_basic_credentials(request)
    if credentials is None:
        return
    form = request.form
    if "client_secret" in form:
        raise InvalidRequestError("Use one client authentication method, not two.")
    if "client_id" in form and form["client_id"] != credentials[0]:
        raise InvalidRequestError("'client_id' does not match the authenticated client.")
