"""ES256 signing keys: persisted, rotatable, published as a JWKS (RFC 7517).

Three states. The *next* key is published before it signs anything, so
resource servers that refresh their JWKS learn it ahead of use. A rotation
retires the *active* key, promotes the next one and creates a new next. A
*retired* key stays published for ``retention`` seconds, longer than any
token it signed lives. Together with hopauth's refetch on an unknown ``kid``,
a rotation costs no failed request.
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
    activated_at: int | None
    retired_at: int | None

    @property
    def signing(self) -> bool:
        return self.activated_at is not None and self.retired_at is None


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
        activated_at=row.activated_at,
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
        """Read the published keys; make sure there is an active and a next key."""
        with self._lock:
            now = int(self._clock())
            with transaction(self._factory) as session:
                rows = list(repository.signing_keys_since(session, now - self._retention))
                changed = False
                if not any(_is_active(row) for row in rows):
                    pending = [row for row in rows if _is_next(row)]
                    row = pending[0] if pending else self._new_key(session, now)
                    row.activated_at = now
                    changed = True
                if not any(_is_next(row) for row in rows):
                    self._new_key(session, now)
                    changed = True
                if changed:
                    session.flush()
                    rows = list(repository.signing_keys_since(session, now - self._retention))
            self._install(rows)

    def rotate(self) -> str:
        """Retire the active key, start signing with the next one; returns its kid."""
        with self._lock:
            now = int(self._clock())
            with transaction(self._factory) as session:
                rows = repository.signing_keys_since(session, now - self._retention)
                pending = [row for row in rows if _is_next(row)]
                promoted = pending[0] if pending else self._new_key(session, now)
                repository.retire_active_keys(session, now)
                repository.activate_key(session, promoted.kid, now)
                self._new_key(session, now)
                session.flush()
                rows = list(repository.signing_keys_since(session, now - self._retention))
            self._install(rows)
            return promoted.kid

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

    def public_jwk(self, kid: str) -> dict[str, str] | None:
        """The published JWK for ``kid`` (with ``kid``, ``alg``, ``use``), or None."""
        if self.public_key(kid) is None:
            return None
        key = self._keys[kid]
        return {**key.public_jwk, "kid": key.kid, "use": "sig", "alg": ALGORITHM}

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
            activated_at=None,
            retired_at=None,
        )
        repository.add(session, row)
        return row

    def _install(self, rows: list[SigningKey]) -> None:
        loaded: dict[str, LoadedKey] = {}
        for row in rows:
            held = self._keys.get(row.kid)
            unchanged = held is not None and (held.activated_at, held.retired_at) == (
                row.activated_at,
                row.retired_at,
            )
            loaded[row.kid] = held if held is not None and unchanged else _load(row)
        signing = sorted(
            (key for key in loaded.values() if key.signing), key=lambda key: key.activated_at or 0
        )
        self._keys = loaded
        self._active = signing[-1] if signing else None
        self._loaded_at = self._clock()


def _is_active(row: SigningKey) -> bool:
    return row.activated_at is not None and row.retired_at is None


def _is_next(row: SigningKey) -> bool:
    return row.activated_at is None and row.retired_at is None
