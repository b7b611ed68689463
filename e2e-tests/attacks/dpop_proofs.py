"""DPoP proofs (RFC 9449 §4.2) made by the harness' own code, not by hopauth's.

An attack suite that built its proofs with the library under test would share
that library's mistakes; these ~40 lines follow the RFC directly, so a proof
the services accept is one any RFC 9449 client could have made.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from urllib.parse import urlsplit, urlunsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class ProofKey:
    """An ES256 key pair that signs DPoP proofs; ``thumbprint`` is its RFC 7638 ``jkt``."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        numbers = self._key.public_key().public_numbers()
        self.public_jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }
        # RFC 7638 §3.2: the required members, lexicographic order, no whitespace.
        canonical = json.dumps(self.public_jwk, sort_keys=True, separators=(",", ":"))
        self.thumbprint = b64url(hashlib.sha256(canonical.encode()).digest())

    def __repr__(self) -> str:
        return f"ProofKey(jkt={self.thumbprint})"

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return self._key

    def proof(self, method: str, url: str, *, access_token: str | None = None) -> str:
        """A DPoP proof JWT for one request (RFC 9449 §4.2); ``ath`` binds it to the token."""
        parts = urlsplit(url)
        claims: dict[str, object] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
            "iat": int(time.time()),
        }
        if access_token is not None:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode("ascii")).digest())
        headers = {"typ": "dpop+jwt", "jwk": self.public_jwk}
        return jwt.encode(claims, self._key, algorithm="ES256", headers=headers)
