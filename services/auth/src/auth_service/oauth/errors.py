"""OAuth errors Authlib does not define."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Error


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8693 §2.2.2 / RFC 8707 §2: the requested audience is not acceptable."""

    error = "invalid_target"
    status_code = 400
