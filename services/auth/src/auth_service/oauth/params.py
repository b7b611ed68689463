"""Strict reading of token-endpoint parameters (RFC 6749 §3.2: never repeated)."""

from __future__ import annotations

from collections.abc import Collection

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Request

from .errors import UnsupportedTokenTypeHint


def single(request: OAuth2Request, name: str, *, required: bool = False) -> str | None:
    values = request.payload.datalist.get(name, [])
    if len(values) > 1:
        raise InvalidRequestError(f"Parameter '{name}' must not be repeated.")
    value = values[0] if values else None
    if required and not value:
        raise InvalidRequestError(f"Missing '{name}' parameter.")
    return value or None


def requested_scopes(request: OAuth2Request) -> frozenset[str] | None:
    """The requested scopes, or None when the client asked for none."""
    scope = single(request, "scope")
    if scope is None:
        return None
    scopes = frozenset(scope.split())
    return scopes or None


def check_token_params(request: OAuth2Request, supported: Collection[str]) -> None:
    """``token`` and ``token_type_hint`` of RFC 7009 §2.1 and RFC 7662 §2.1."""
    if "token" not in request.form:
        raise InvalidRequestError("Missing 'token' parameter.")
    hint = request.form.get("token_type_hint")
    if hint and hint not in supported:
        raise UnsupportedTokenTypeHint(f"Unsupported token_type_hint '{hint}'.")
