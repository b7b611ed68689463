"""Validation of JWT access tokens on the receiving side (RFC 9068 §4).

Every refusal raises :class:`~hopauth.errors.InvalidTokenError` with its own
short ``reason``; a revocation checker that cannot answer raises
:class:`~hopauth.errors.RevocationUnavailableError` instead. The checks run
cheapest first, and nothing is parsed before the size check, so garbage costs
little.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
from collections.abc import Collection, Sequence
from typing import Any, Final

import jwt

from ._strict_json import json_object
from .errors import InvalidTokenError
from .jwks import KeySource
from .principal import Principal
from .revocation import RevocationChecker

__all__ = ["ASYMMETRIC_ALGORITHMS", "AccessTokenValidator"]

#: JWS algorithms (RFC 7518 §3.1, RFC 8037 §3.1) a validator may allow, with
#: the JWK ``kty`` a key must have to verify them.
_KEY_TYPE_FOR_ALG: Final[dict[str, str]] = {
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "EdDSA": "OKP",
}
ASYMMETRIC_ALGORITHMS: Final = frozenset(_KEY_TYPE_FOR_ALG)

#: RFC 9068 §4: ``typ`` must be ``at+jwt`` or ``application/at+jwt``; media
#: types are case-insensitive (RFC 2045 §5.1), so compare lower-cased.
_ACCESS_TOKEN_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})

#: A real header is ~100 bytes; the cap bounds the JSON parsed before the
#: signature is checked.
_MAX_HEADER_CHARS: Final = 1024

_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")

MAX_LEEWAY_SECONDS: Final = 30

DEFAULT_REQUIRED_CLAIMS: Final = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")


class AccessTokenValidator:
    """Checks that a bearer token is an access token our issuer minted for us.

    ``issuer`` and ``audience`` are compared exactly. ``extra_audiences`` are
    other identifiers this resource server also answers to (RFC 9068 §4: the
    ``aud`` claim must contain *an* identifier of this resource server, and a
    server may have several); ``audience`` stays the primary one, used as the
    realm of challenges. Every identifier added widens what a token stolen
    from a neighbour can open here, so keep the list short. ``algorithms`` is the
    allowlist of JWS algorithms; only asymmetric ones are accepted, so
    ``none`` and the HMAC family cannot sneak in. ``leeway`` (seconds) absorbs
    clock skew for ``exp``, ``nbf`` and ``iat``. When ``revocation`` is given,
    it is asked last, after the token proved genuine.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        keys: KeySource,
        extra_audiences: Collection[str] = (),
        algorithms: Sequence[str] = ("ES256",),
        leeway: int = 30,
        max_token_bytes: int = 8192,
        revocation: RevocationChecker | None = None,
        required_claims: Sequence[str] = DEFAULT_REQUIRED_CLAIMS,
    ) -> None:
        if isinstance(algorithms, str):
            raise TypeError("algorithms must be a sequence of names, not a string")
        if not algorithms:
            raise ValueError("algorithms must name at least one algorithm")
        for alg in algorithms:
            if alg.lower() == "none":
                raise ValueError("the 'none' algorithm can never be allowed (RFC 8725 §3.1)")
            if alg.upper().startswith("HS"):
                # Mixing HMAC with public-key algorithms is the classic key
                # confusion hole: the public key becomes the HMAC secret.
                raise ValueError(f"HMAC algorithm {alg!r} is not allowed; use asymmetric keys")
            if alg not in ASYMMETRIC_ALGORITHMS:
                raise ValueError(f"unsupported algorithm {alg!r}")
        if not issuer or not audience:
            raise ValueError("issuer and audience must be non-empty")
        if isinstance(extra_audiences, str):
            raise TypeError("extra_audiences must be a collection of names, not a string")
        if not all(isinstance(a, str) and a for a in extra_audiences):
            raise ValueError("extra_audiences must be non-empty strings")
        if not 0 <= leeway <= MAX_LEEWAY_SECONDS:
            # More skew than this is a clock to fix, not a token lifetime to stretch.
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY_SECONDS} seconds")
        self._issuer = issuer
        self._audience = audience
        self._audiences = frozenset({audience, *extra_audiences})
        self._keys = keys
        self._algorithms = frozenset(algorithms)
        self._leeway = leeway
        self._max_token_bytes = max_token_bytes
        self._revocation = revocation
        self._required_claims = tuple(required_claims)
        self._jws = jwt.PyJWS()

    @property
    def issuer(self) -> str:
        return self._issuer

    @property
    def audience(self) -> str:
        """The primary identifier of this resource server (the realm of challenges)."""
        return self._audience

    @property
    def audiences(self) -> frozenset[str]:
        """Every identifier a token's ``aud`` may name to be accepted here."""
        return self._audiences

    def __repr__(self) -> str:
        extra = sorted(self._audiences - {self._audience})
        return (
            f"AccessTokenValidator(issuer={self._issuer!r}, audience={self._audience!r}, "
            + (f"extra_audiences={extra!r}, " if extra else "")
            + f"algorithms={sorted(self._algorithms)!r})"
        )

    async def validate(self, token: str) -> Principal:
        """Return the :class:`Principal` of a valid access token, else raise.

        Raises :class:`InvalidTokenError`, or the revocation checker's
        :class:`RevocationUnavailableError`; a ``reason`` never includes the token.
        """
        # Before any parsing: an oversized token is refused at the cost of len().
        if len(token) > self._max_token_bytes:
            raise InvalidTokenError("token too large")
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidTokenError("malformed token: expected three parts")
        # Compact JWS is base64url without padding (RFC 7515 §7.1, §2).
        if not all(_BASE64URL.fullmatch(part) for part in parts):
            raise InvalidTokenError("malformed token: not base64url")

        header = _decode_header(parts[0])
        alg = header.get("alg")
        # Exact comparison against the allowlist: "None" or "nOnE" are not in it.
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise InvalidTokenError("algorithm not allowed")
        # RFC 7515 §4.1.11: a recipient must refuse a critical header it does
        # not understand, and we understand none.
        if "crit" in header:
            raise InvalidTokenError("unsupported critical header")
        typ = header.get("typ")
        # RFC 9068 §4: also keeps ID tokens and other JWTs from passing as access tokens.
        if not isinstance(typ, str) or typ.lower() not in _ACCESS_TOKEN_TYPES:
            raise InvalidTokenError("not an access token (typ)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidTokenError("missing kid")

        # Only the configured key source is consulted: jku, x5u, jwk and x5c
        # would let the token choose the key that verifies it (RFC 8725 §3.10).
        key = await self._keys.get_key(kid)
        if key.algorithm_name != alg or key.key_type != _KEY_TYPE_FOR_ALG[alg]:
            raise InvalidTokenError("key does not fit algorithm")
        try:
            decoded = self._jws.decode_complete(token, key=key, algorithms=[alg])
        except jwt.InvalidSignatureError:
            raise InvalidTokenError("invalid signature") from None
        except jwt.PyJWTError:
            raise InvalidTokenError("malformed token") from None

        claims = json_object(decoded["payload"])
        if claims is None:
            raise InvalidTokenError("malformed claims")
        self._check_claims(claims)
        principal = Principal.from_claims(claims)
        if self._revocation is not None and await self._revocation.is_revoked(principal):
            raise InvalidTokenError("session revoked")
        return principal

    def _check_claims(self, claims: dict[str, Any]) -> None:
        """RFC 9068 §4 steps on the claims set; Principal.from_claims checks the rest
        (``sub``, ``client_id`` and ``jti`` non-empty strings, ``scope`` and ``act`` shapes)."""
        for name in self._required_claims:
            if name not in claims:
                raise InvalidTokenError(f"missing claim: {name}")
        if claims.get("iss") != self._issuer:
            raise InvalidTokenError("wrong issuer")
        aud = claims.get("aud")
        # RFC 7519 §4.1.3: a string or an array of strings; it must name one of us.
        named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(a, str) and a in self._audiences for a in named):
            raise InvalidTokenError("wrong audience")

        now = time.time()
        exp = _numeric_date(claims, "exp")
        if exp is not None and now >= exp + self._leeway:
            raise InvalidTokenError("token expired")
        nbf = _numeric_date(claims, "nbf")
        if nbf is not None and nbf > now + self._leeway:
            raise InvalidTokenError("token not yet valid")
        iat = _numeric_date(claims, "iat")
        if iat is not None and iat > now + self._leeway:
            raise InvalidTokenError("token issued in the future")


def _numeric_date(claims: dict[str, Any], name: str) -> float | None:
    """RFC 7519 §2 NumericDate, finite: ``1e400`` parses as infinity, and an
    infinite ``exp`` would never expire (a NaN ``nbf`` never compares true)."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidTokenError(f"{name} claim must be a number")
    return float(value)


def _decode_header(segment: str) -> dict[str, Any]:
    if len(segment) > _MAX_HEADER_CHARS:
        raise InvalidTokenError("malformed token: header too large")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise InvalidTokenError("malformed token: bad header encoding") from None
    header = json_object(raw)
    if header is None:
        raise InvalidTokenError("malformed token: header is not a JSON object")
    return header
