"""Forged JWTs, built byte by byte so each one differs from a genuine token in one way.

Most forgeries need nothing but the attacker's own key. The ones that must
isolate a *claim* check (expired, not yet valid, another issuer's name, an
ID token's shape) are signed with the issuer's real key, read from the local
stack's auth database: the strongest forger there is, so that nothing but
the claim check under test can stop the token. (That key never leaves the
state directory of a stack the harness can already read.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from dpop_proofs import ProofKey, b64url


def segment(value: dict[str, Any], literals: dict[str, str] | None = None) -> str:
    """base64url(JSON); ``literals`` puts members in as raw JSON text (``1e400``)."""
    text = json.dumps(value, separators=(",", ":"))
    for name, raw in (literals or {}).items():
        text = text[:-1] + f',"{name}":{raw}}}'
    return b64url(text.encode())


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return f"{segment(header)}.{segment(claims)}.{signature}"


def es256(
    header: dict[str, Any],
    claims: dict[str, Any],
    key: ec.EllipticCurvePrivateKey,
    *,
    literals: dict[str, str] | None = None,
) -> str:
    """JWS ES256 (RFC 7518 §3.4): the raw R || S signature over ``header.payload``."""
    claims = {name: value for name, value in claims.items() if name not in (literals or {})}
    signing_input = f"{segment(header)}.{segment(claims, literals)}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """JWS HS256 (RFC 7518 §3.2) with any bytes as the secret, e.g. a public key."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def header_of(token: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(unb64url(token.split(".")[0]))
    return parsed


def public_pem(jwk: dict[str, Any]) -> bytes:
    """The PEM of an EC public JWK, as published in the issuer's JWKS."""

    def number(name: str) -> int:
        return int.from_bytes(unb64url(str(jwk[name])), "big")

    public = ec.EllipticCurvePublicNumbers(number("x"), number("y"), ec.SECP256R1()).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def issuer_signing_key(state_dir: Path | None) -> tuple[str, ec.EllipticCurvePrivateKey] | None:
    """(kid, key) of the issuer's active signing key, from a local stack's SQLite database."""
    if state_dir is None or not (state_dir / "auth.db").exists():
        return None
    uri = f"file:{state_dir / 'auth.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        row = db.execute(
            "SELECT kid, private_key_pem FROM signing_keys "
            "WHERE activated_at IS NOT NULL AND retired_at IS NULL "
            "ORDER BY activated_at DESC LIMIT 1"
        ).fetchone()
    if row is None:
        return None
    key = serialization.load_pem_private_key(str(row[1]).encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return str(row[0]), key


class AttackerHost:
    """The attacker's web server: serves their JWKS, and remembers who came to fetch it.

    ``jku``/``x5u`` attacks point here; a validator that followed the header
    would show up in :attr:`requests`.
    """

    def __init__(self, key: ProofKey) -> None:
        self.requests: list[str] = []
        jwks = json.dumps({"keys": [{**key.public_jwk, "kid": key.thumbprint}]}).encode()
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(jwks)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[AttackerHost]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
