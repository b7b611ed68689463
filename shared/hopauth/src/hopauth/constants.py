"""Registered URNs used on the wire (RFC 8693 §2.1, §3)."""

from __future__ import annotations

from typing import Final

__all__ = ["ACCESS_TOKEN_TYPE", "CLIENT_CREDENTIALS_GRANT", "TOKEN_EXCHANGE_GRANT"]

#: ``grant_type`` of a token exchange request (RFC 8693 §2.1).
TOKEN_EXCHANGE_GRANT: Final = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 (a URN, not a secret)

#: Token type identifier of an OAuth 2 access token (RFC 8693 §3).
ACCESS_TOKEN_TYPE: Final = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 (a URN, not a secret)

#: ``grant_type`` of a client credentials request (RFC 6749 §4.4.2).
CLIENT_CREDENTIALS_GRANT: Final = "client_credentials"
