"""The authenticated party behind a validated access token.

Claim names follow RFC 9068 §2.2 (``iss sub aud exp iat jti client_id scope``),
RFC 8693 §4.1 (``act``), OpenID Connect Front-Channel Logout §3 (``sid``) and
RFC 7800 §3.1 (``cnf``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .errors import InvalidTokenError

__all__ = ["MAX_ACT_DEPTH", "Principal"]

#: Deepest ``act`` nesting accepted; a real chain is a handful of hops, and a
#: cap keeps a hostile token from making us walk an arbitrarily deep structure.
MAX_ACT_DEPTH = 10


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is made for (``subject``) and who presented it (``caller``).

    Access decisions should look only at top-level claims and the current
    actor, as RFC 8693 §4.1 advises: earlier actors in ``actors`` are history,
    "informational only".
    """

    subject: str
    client_id: str
    scopes: frozenset[str]
    audience: tuple[str, ...]
    token_id: str
    session_id: str | None
    actors: tuple[str, ...]
    issuer: str
    issued_at: int
    expires_at: int
    #: ``cnf`` (RFC 7800 §3.1). hopauth checks only ``jkt``; a token naming any
    #: other confirmation method must be refused unless the caller checks it
    #: (``hopauth.fastapi`` refuses it), or its binding quietly lapses.
    confirmation: Mapping[str, Any] | None = None
    #: ``cnf.jkt`` (RFC 9449 §6.1): the token is DPoP-bound to the key with this
    #: RFC 7638 thumbprint, and is only good with a proof signed by that key.
    confirmation_jkt: str | None = None

    @property
    def current_actor(self) -> str | None:
        """The party acting on the subject's behalf now (``act.sub``), if any."""
        return self.actors[0] if self.actors else None

    @property
    def caller(self) -> str:
        """The party that presented the token: the current actor, else the client."""
        return self.actors[0] if self.actors else self.client_id

    @property
    def is_delegated(self) -> bool:
        """True for an exchanged token carrying an ``act`` claim (RFC 8693 §4.1)."""
        return bool(self.actors)

    @property
    def is_service(self) -> bool:
        """True for a client-credentials token: no ``act`` and ``sub == client_id``."""
        return not self.actors and self.subject == self.client_id

    def has_scopes(self, *scopes: str) -> bool:
        """True when every one of ``scopes`` was granted (RFC 6749 §3.3)."""
        return self.scopes.issuperset(scopes)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        """Build a principal from already-verified claims, checking their types.

        Raises :class:`InvalidTokenError` when a claim has the wrong shape.
        """
        confirmation = claims.get("cnf")
        if confirmation is not None and not isinstance(confirmation, Mapping):
            raise InvalidTokenError("cnf claim must be an object")
        jkt = confirmation.get("jkt") if confirmation is not None else None
        if jkt is not None and (not isinstance(jkt, str) or not jkt):
            raise InvalidTokenError("cnf.jkt must be a non-empty string")
        return cls(
            subject=_required_str(claims, "sub"),
            client_id=_required_str(claims, "client_id"),
            scopes=_parse_scope(claims.get("scope")),
            audience=_parse_audience(claims.get("aud")),
            token_id=_required_str(claims, "jti"),
            session_id=_optional_str(claims, "sid"),
            actors=_parse_actors(claims.get("act")),
            issuer=_required_str(claims, "iss"),
            issued_at=_numeric_date(claims, "iat"),
            expires_at=_numeric_date(claims, "exp"),
            confirmation=MappingProxyType(dict(confirmation)) if confirmation else None,
            confirmation_jkt=jkt,
        )


def _required_str(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidTokenError(f"{name} claim must be a non-empty string")
    return value


def _optional_str(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidTokenError(f"{name} claim must be a non-empty string")
    return value


def _numeric_date(claims: Mapping[str, Any], name: str) -> int:
    """RFC 7519 §2 NumericDate; bool is refused because it is an int in Python.

    Python's JSON parser reads ``1e400`` as infinity and accepts ``NaN``: neither is a date.
    """
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidTokenError(f"{name} claim must be a number")
    return int(value)


def _parse_scope(value: object) -> frozenset[str]:
    """RFC 9068 §2.2.3: ``scope`` is a space-delimited string (RFC 6749 §3.3)."""
    if value is None:
        return frozenset()
    if not isinstance(value, str):
        raise InvalidTokenError("scope claim must be a space-delimited string")
    return frozenset(part for part in value.split(" ") if part)


def _parse_audience(value: object) -> tuple[str, ...]:
    """RFC 7519 §4.1.3: ``aud`` is a string or an array of strings."""
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and value and all(isinstance(a, str) and a for a in value):
        return tuple(value)
    raise InvalidTokenError("aud claim must be a string or a list of strings")


def _parse_actors(value: object) -> tuple[str, ...]:
    """Flatten the RFC 8693 §4.1 ``act`` chain, current actor first."""
    actors: list[str] = []
    while value is not None:
        if len(actors) >= MAX_ACT_DEPTH:
            raise InvalidTokenError("act claim nested too deeply")
        if not isinstance(value, Mapping):
            raise InvalidTokenError("act claim must be an object")
        sub = value.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidTokenError("act claim must have a non-empty string sub")
        actors.append(sub)
        value = value.get("act")
    return tuple(actors)
