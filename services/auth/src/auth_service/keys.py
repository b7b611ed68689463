"""ES256 signing keys: persisted, rotatable, published as a JWKS (RFC 7517).

A rotation adds a new active key and retires the old one; a retired key stays
in the JWKS for ``retention`` seconds, longer than any token it signed lives.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.orm import Session, sessionmaker

from . import repository
from .db import transaction
from .models import SigningKey

ALGORITHM = "ES256"


@dataclass(frozen=True, slots=True)
class LoadedKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey
    public_key: ec.EllipticCurvePublicKey
    public_jwk: dict[str, str]
    retired_at: int | None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _public_jwk(private_key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = private_key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }


def _thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 JWK thumbprint: a kid that names the key's content."""
    canonical = json.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def _load(row: SigningKey) -> LoadedKey:
    private_key = serialization.load_pem_private_key(row.private_key_pem.encode(), password=None)
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"signing key {row.kid} is not an EC key")
    return LoadedKey(
        kid=row.kid,
        private_key=private_key,
        public_key=private_key.public_key(),
        public_jwk=_public_jwk(private_key),
        retired_at=row.retired_at,
    )


class KeyStore:
    """Signing keys held in memory, re-read from the database periodically."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        retention: int,
        reload_interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._factory = factory
        self._retention = retention
        self._reload_interval = reload_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, LoadedKey] = {}
        self._active: LoadedKey | None = None
        self._loaded_at = float("-inf")

    def load(self) -> None:
        """Read the published keys; create the first key if there is none."""
        with self._lock:
            now = int(self._clock())
            with transaction(self._factory) as session:
                rows = repository.signing_keys_since(session, now - self._retention)
                if not any(row.retired_at is None for row in rows):
                    rows = [*rows, self._new_key(session, now)]
            self._install(rows)

    def rotate(self) -> str:
        """Retire the active key and start signing with a new one; returns the new kid."""
        with self._lock:
            now = int(self._clock())
            with transaction(self._factory) as session:
                repository.retire_active_keys(session, now)
                new = self._new_key(session, now)
                session.flush()
                rows = repository.signing_keys_since(session, now - self._retention)
            self._install(rows)
            return new.kid

    def active(self) -> LoadedKey:
        if self._clock() - self._loaded_at > self._reload_interval:
            self.load()
        assert self._active is not None  # load() always installs an active key
        return self._active

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        key = self._keys.get(kid)
        if key is None and self._clock() - self._loaded_at > 1.0:
            # A key minted by another replica moments ago: look once more, rate-limited.
            self.load()
            key = self._keys.get(kid)
        return key.public_key if key is not None else None

    def jwks(self) -> dict[str, Any]:
        self.active()
        keys = [
            {**key.public_jwk, "kid": key.kid, "use": "sig", "alg": ALGORITHM}
            for key in self._keys.values()
        ]
        return {"keys": keys}

    def _new_key(self, session: Session, now: int) -> SigningKey:
        private_key = ec.generate_private_key(ec.SECP256R1())
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        row = SigningKey(
            kid=_thumbprint(_public_jwk(private_key)),
            algorithm=ALGORITHM,
            private_key_pem=pem,
            created_at=now,
            retired_at=None,
        )
        repository.add(session, row)
        return row

    def _install(self, rows: list[SigningKey] | Any) -> None:
        loaded = {row.kid: self._keys.get(row.kid) or _load(row) for row in rows}
        # Retirement may have changed on a key we already hold.
        for row in rows:
            if loaded[row.kid].retired_at != row.retired_at:
                loaded[row.kid] = _load(row)
        active = [key for key in loaded.values() if key.retired_at is None]
        self._keys = loaded
        self._active = active[-1] if active else None
        self._loaded_at = self._clock()
