"""Exceptions raised by hopauth.

Messages and reprs never carry a token or a secret: a token is identified, at
most, by its ``jti``. Exceptions end up in logs and error pages, and a bearer
token in a log is a live credential.
"""

from __future__ import annotations

__all__ = [
    "HopAuthError",
    "InvalidDPoPProofError",
    "InvalidTokenError",
    "RevocationUnavailableError",
    "TokenRequestError",
]


class HopAuthError(Exception):
    """Base class of every error hopauth raises on purpose."""


class InvalidTokenError(HopAuthError):
    """An access token was refused (RFC 6750 §3.1 ``invalid_token``).

    ``reason`` is short and human-readable, safe to log and to return in an
    ``error_description``; it never contains the token.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RevocationUnavailableError(HopAuthError):
    """Whether the token's session was revoked could not be learnt (the store did not answer).

    The token is not accepted (fail closed), but it was not found invalid
    either: the fault is the server's, so the FastAPI adapter answers 503 with
    ``Retry-After``, not 401, which would tell the client to drop a good token.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidDPoPProofError(HopAuthError):
    """A DPoP proof was refused (RFC 9449 §4.3; ``invalid_dpop_proof``, §5 and §7.1).

    ``reason`` is short and human-readable, safe to log and to return in an
    ``error_description``; it never contains the proof or the access token.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenRequestError(HopAuthError):
    """The token endpoint refused a request (RFC 6749 §5.2 error response).

    ``error`` is the RFC 6749 error code (``invalid_grant``, ``invalid_scope``,
    ...), ``description`` the server's ``error_description`` if any, and
    ``status_code`` the HTTP status of the response.
    """

    def __init__(self, error: str, description: str | None, status_code: int) -> None:
        message = f"token endpoint refused the request: {error} (HTTP {status_code})"
        if description:
            message = f"{message}: {description}"
        super().__init__(message)
        self.error = error
        self.description = description
        self.status_code = status_code
