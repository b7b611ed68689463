"""OAuth errors Authlib does not define."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Error, UnsupportedTokenTypeError


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8693 §2.2.2 / RFC 8707 §2: the requested audience is not acceptable."""

    error = "invalid_target"
    status_code = 400


class UnsupportedTokenTypeHint(UnsupportedTokenTypeError):  # type: ignore[misc]
    """RFC 7009 §2.2.1: an RFC 6749 §5.2 error, so 400 (Authlib's class says 401)."""

    status_code = 400
