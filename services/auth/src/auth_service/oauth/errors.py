"""OAuth errors Authlib does not define, and client input made safe to quote in any error."""

from __future__ import annotations

import re

from authlib.oauth2.rfc6749 import OAuth2Error, UnsupportedTokenTypeError

# RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E only.
_NOT_DESCRIPTION_CHAR = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_MAX_SHOWN = 64


def shown(value: str) -> str:
    """A client's value as it may appear in an ``error_description`` (RFC 6749 §5.2).

    Authlib raises ValueError (a 500) for a description with any other
    character, so every value a client sent is passed through this first:
    forbidden characters become ``?`` and long values are cut.
    """
    text = _NOT_DESCRIPTION_CHAR.sub("?", value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8693 §2.2.2 / RFC 8707 §2: the requested audience is not acceptable."""

    error = "invalid_target"
    status_code = 400


class UnsupportedTokenTypeHint(UnsupportedTokenTypeError):  # type: ignore[misc]
    """RFC 7009 §2.2.1: an RFC 6749 §5.2 error, so 400 (Authlib's class says 401)."""

    status_code = 400
