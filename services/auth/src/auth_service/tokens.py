"""JWT access tokens per RFC 9068, minted and checked by this issuer.

Minting is the issuer's job; checking here is only for tokens that come back
to the issuer (token exchange subject/actor tokens, introspection). Resource
servers check tokens with hopauth's validator.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import jws
from .keys import ALGORITHM, KeyStore

TOKEN_TYPE_HEADER = "at+jwt"
MAX_TOKEN_BYTES = 8192
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")


class TokenVerificationError(Exception):
    """A token presented to the issuer is not a valid access token from it."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    jti: str
    expires_in: int
    scope: str

    def __repr__(self) -> str:  # never show the token itself
        return f"IssuedToken(jti={self.jti!r}, expires_in={self.expires_in}, scope={self.scope!r})"


def scope_string(scopes: Iterable[str]) -> str:
    return " ".join(sorted(scopes))


def audiences(claims: Mapping[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [item for item in aud if isinstance(item, str)]
    return []


class AccessTokens:
    """Mints RFC 9068 access tokens and verifies ones this issuer minted."""

    def __init__(
        self, *, issuer: str, keys: KeyStore, clock: Callable[[], float] = time.time
    ) -> None:
        self.issuer = issuer
        self._keys = keys
        self._clock = clock

    def mint(
        self,
        *,
        subject: str,
        audience: str,
        client_id: str,
        scopes: Iterable[str],
        lifetime: int,
        not_after: int | None = None,
        sid: str | None = None,
        act: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        jkt: str | None = None,
    ) -> IssuedToken:
        """Sign a token living ``lifetime`` seconds, and never past ``not_after``.

        With ``jkt`` the token is DPoP-bound: ``cnf: {"jkt": ...}`` (RFC 9449 §6.1).
        """
        now = int(self._clock())
        exp = now + lifetime
        if not_after is not None:
            exp = min(exp, not_after)
        scope = scope_string(scopes)
        jti = secrets.token_urlsafe(16)
        claims: dict[str, Any] = {
            **(extra or {}),
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "exp": exp,
            "iat": now,
            "nbf": now,
            "jti": jti,
            "client_id": client_id,
            "scope": scope,
        }
        if sid is not None:
            claims["sid"] = sid
        if act is not None:
            claims["act"] = dict(act)
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}
        key = self._keys.active()
        header = {"alg": ALGORITHM, "kid": key.kid, "typ": TOKEN_TYPE_HEADER}
        token = jws.sign(header, claims, key.private_key)
        return IssuedToken(access_token=token, jti=jti, expires_in=exp - now, scope=scope)

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid, unexpired access token minted here.

        Raises TokenVerificationError otherwise (refresh tokens, ID tokens and
        foreign tokens included). The reason never contains the token.
        """
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenVerificationError("token too large")
        try:
            header, _ = jws.split(token)
        except jws.JWSError:
            raise TokenVerificationError("not a JWT") from None
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ("at+jwt", "application/at+jwt"):
            raise TokenVerificationError("not an access token (typ must be at+jwt)")
        if header.get("alg") != ALGORITHM or "crit" in header:
            raise TokenVerificationError("unacceptable header")
        kid = header.get("kid")
        public_key = self._keys.public_key(kid) if isinstance(kid, str) else None
        if public_key is None:
            raise TokenVerificationError("unknown signing key")
        try:
            claims = jws.verify(token, public_key)
        except jws.JWSError as exc:
            raise TokenVerificationError(f"invalid token: {exc}") from None
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        """RFC 9068 §4 and RFC 7519 §4.1 checks, with LEEWAY_SECONDS of clock skew."""
        for name in REQUIRED_CLAIMS:
            if name not in claims:
                raise TokenVerificationError(f"missing claim {name}")
        if claims["iss"] != self.issuer:
            raise TokenVerificationError("wrong issuer")
        for name in ("sub", "jti", "client_id"):
            if not isinstance(claims[name], str) or not claims[name]:
                raise TokenVerificationError(f"claim {name} must be a non-empty string")
        now = self._clock()
        times = {name: claims.get(name) for name in ("exp", "iat", "nbf")}
        for name, value in times.items():
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise TokenVerificationError(f"claim {name} must be an integer")
        if claims["exp"] <= now - LEEWAY_SECONDS:
            raise TokenVerificationError("expired")
        if claims["iat"] > now + LEEWAY_SECONDS:
            raise TokenVerificationError("issued in the future")
        nbf = claims.get("nbf")
        if nbf is not None and nbf > now + LEEWAY_SECONDS:
            raise TokenVerificationError("not yet valid")


def act_chain(act: Any) -> list[str]:
    """The actors of a nested ``act`` claim, current actor first (RFC 8693 §4.1)."""
    chain: list[str] = []
    while isinstance(act, Mapping):
        sub = act.get("sub")
        if not isinstance(sub, str):
            break
        chain.append(sub)
        act = act.get("act")
    return chain


def summary(claims: Mapping[str, Any]) -> dict[str, Any]:
    """A log-safe summary of a token: never the token, only who and what."""
    return {
        "jti": claims.get("jti"),
        "sub": claims.get("sub"),
        "client_id": claims.get("client_id"),
        "act": act_chain(claims.get("act")),
    }
