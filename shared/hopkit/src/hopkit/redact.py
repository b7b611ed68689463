"""Credentials out of text that a caller sent and a service writes back out.

The services never log or echo a token on purpose (log lines carry ``jti``,
``sub``, ``client_id`` and ``act`` at most), but a caller can put one where
they do echo what they were sent: a URL path in the access log line, a JSON
key in a 422's ``loc``. :func:`redact_credentials` replaces what is shaped
like a credential there with ``[redacted]``; the JSON log formatter
(:mod:`hopkit.logs`) and the validation problem (:mod:`hopkit.problems`) use it.
Query strings never reach a log line at all: the access line has the path only.

Two shapes, both precise enough to leave the system's ids alone:

- a JWS or JWE in compact serialization (RFC 7519 §3, RFC 7515 §7.1,
  RFC 7516 §7.1): three to five base64url parts separated by dots, the first
  a JSON header, so starting with ``eyJ`` (base64url of ``{"``);
- an opaque token as ``secrets.token_urlsafe(32)`` makes them (the auth
  service's refresh tokens): a run of 43 or more base64url characters that
  mixes upper and lower case. Random base64url of that length all but always
  does; ``ord_<32 hex>``, uuids, hex digests and lowercase slugs do not.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

_B64URL = "[A-Za-z0-9_-]"
# Each match starts at the edge of a base64url run (the look-behind), never inside
# one: a long run is then scanned once, not once per position.
_JWT = re.compile(rf"(?<!{_B64URL})eyJ{_B64URL}+(?:\.{_B64URL}*){{2,4}}")
_OPAQUE_LENGTH = 43  # len(secrets.token_urlsafe(32))
_RUN = re.compile(rf"(?<!{_B64URL}){_B64URL}{{{_OPAQUE_LENGTH},}}")


def _opaque(match: re.Match[str]) -> str:
    run = match.group()
    if any(char.isupper() for char in run) and any(char.islower() for char in run):
        return REDACTED
    return run


def redact_credentials(text: str) -> str:
    """``text`` with every JWT-shaped or opaque-token-shaped run replaced by ``[redacted]``."""
    if len(text) < _OPAQUE_LENGTH and "eyJ" not in text:
        return text  # the common case (a short path, a log message): no regex at all
    return _RUN.sub(_opaque, _JWT.sub(REDACTED, text))
