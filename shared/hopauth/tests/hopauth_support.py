"""Test helpers: tokens signed by hand, a fake clock, fake issuer endpoints."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ISSUER = "http://127.0.0.1:8001"
AUDIENCE = "order"
KID = "key-1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(value: object) -> str:
    return b64url(json.dumps(value).encode())


def public_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "alg": "ES256"}


def sign_es256(key: ec.EllipticCurvePrivateKey, header: dict[str, Any], claims: Any) -> str:
    """Sign exactly the header given: no defaults added behind our back."""
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    signature = ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input.encode(), key)
    return f"{signing_input}.{b64url(signature)}"


def default_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
        "client_id": "gateway",
        "scope": "orders:read orders:write",
        "sid": "session-1",
        "act": {"sub": "gateway"},
    }
    claims.update(overrides)
    return claims


MakeToken = Callable[..., str]


class FakeClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeIssuer:
    """Discovery + JWKS endpoints of an issuer, counting requests by path."""

    jwks: dict[str, Any]
    issuer: str = ISSUER
    fail: bool = False
    hits: dict[str, int] = field(default_factory=dict)
    #: more documents to serve, by path (e.g. an attacker's JWK Set)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def metadata(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "jwks_uri": f"{ISSUER}/jwks.json"}

    async def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.hits[path] = self.hits.get(path, 0) + 1
        # Let concurrent callers pile up while this "request" is in flight.
        await asyncio.sleep(0.01)
        if self.fail:
            return httpx.Response(503)
        if path == "/.well-known/oauth-authorization-server":
            return httpx.Response(200, json=self.metadata)
        if path == "/jwks.json":
            return httpx.Response(200, json=self.jwks)
        if path in self.extra:
            return httpx.Response(200, json=self.extra[path])
        return httpx.Response(404)

    def count(self, path: str) -> int:
        return self.hits.get(path, 0)


@dataclass
class FakeTokenEndpoint:
    """A token endpoint that mints opaque tokens and records the requests."""

    expires_in: int = 300
    requests: list[dict[str, str]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    refuse: dict[str, Any] | None = None

    async def handler(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        self.requests.append(form)
        self.authorizations.append(request.headers.get("authorization", ""))
        await asyncio.sleep(0.01)
        if self.refuse is not None:
            return httpx.Response(400, json=self.refuse)
        body: dict[str, Any] = {
            "access_token": f"tok-{len(self.requests)}-{uuid.uuid4().hex}",
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        if "scope" in form:
            body["scope"] = form["scope"]
        if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange":
            body["issued_token_type"] = "urn:ietf:params:oauth:token-type:access_token"
        return httpx.Response(200, json=body)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
