"""JWS compact serialization (RFC 7515 §7.1) with ES256 (RFC 7518 §3.4), for this issuer's tokens.

Only the issuer's own tokens pass through here: minting, and checking tokens
that come back in exchanges and introspection. A general JOSE library does
more than that per call (PyJWT's generic path cost 141 µs per verification
here, against 80 µs for the signature itself) and the token endpoint is the
hot path of the system. Resource servers verify with hopauth, i.e. PyJWT.

Nothing is negotiated: the algorithm is ES256, fixed by the caller's key, and
the header is checked by the caller before any key is chosen.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

# RFC 7515 §2: base64url without padding.
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_SIGNATURE_BYTES = 64  # RFC 7518 §3.4: R || S, 32 octets each for P-256
# Our headers are ~100 characters; a long one is junk, and JSON nesting costs recursion.
MAX_HEADER_CHARS = 1024


class JWSError(ValueError):
    """The token is not a well-formed ES256 JWS, or its signature does not verify."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str) -> bytes:
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        raise JWSError("malformed base64url segment")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_object(segment: str) -> dict[str, Any]:
    try:
        value = orjson.loads(b64url_decode(segment))
    except (orjson.JSONDecodeError, RecursionError):
        # Covers bad UTF-8, bad JSON, too deep nesting and out-of-range integers.
        raise JWSError("segment is not JSON") from None
    if not isinstance(value, dict):
        raise JWSError("segment is not a JSON object")
    return value


def sign(header: dict[str, Any], claims: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
    signing_input = b64url_encode(orjson.dumps(header)) + "." + b64url_encode(orjson.dumps(claims))
    r, s = decode_dss_signature(key.sign(signing_input.encode("ascii"), _ECDSA_SHA256))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input}.{b64url_encode(signature)}"


def split(token: str) -> tuple[dict[str, Any], str]:
    """The header (unverified, to choose a key) and the token, checked for shape."""
    if token.count(".") != 2:
        raise JWSError("not a compact JWS")
    header = token.split(".", 1)[0]
    if len(header) > MAX_HEADER_CHARS:
        raise JWSError("header too large")
    return _json_object(header), token


def verify(token: str, key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """Verify the ES256 signature and return the claims."""
    header_segment, payload_segment, signature_segment = token.split(".")
    # Checked before the signing input is encoded: a non-ASCII character there
    # would raise UnicodeEncodeError, not JWSError (a 500 at /token and /revoke).
    if not (_SEGMENT.fullmatch(header_segment) and _SEGMENT.fullmatch(payload_segment)):
        raise JWSError("malformed base64url segment")
    signature = b64url_decode(signature_segment)
    if len(signature) != _SIGNATURE_BYTES or b64url_encode(signature) != signature_segment:
        raise JWSError("malformed signature")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        key.verify(der, f"{header_segment}.{payload_segment}".encode("ascii"), _ECDSA_SHA256)
    except InvalidSignature:
        raise JWSError("bad signature") from None
    return _json_object(payload_segment)
