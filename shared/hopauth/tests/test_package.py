"""Package shape: the public names, what hopauth imports, and what it never reveals."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import hopauth
import httpx
import pytest
from hopauth import (
    AccessTokenValidator,
    ClientCredentials,
    HopAuthError,
    InvalidTokenError,
    StaticKeySource,
    TokenEndpoint,
    TokenRequestError,
    TokenResponse,
)
from hopauth_support import AUDIENCE, ISSUER, MakeToken

SRC = Path(hopauth.__file__).parent
ADAPTERS = {
    "fastapi.py": {"fastapi", "starlette"},
    "redis_revocation.py": {"redis"},
    "redis_cache.py": {"redis"},
    "redis_replay.py": {"redis"},
}
# cryptography comes with pyjwt[crypto]; rfc9449 signs proofs with it directly.
CORE_THIRD_PARTY = {"jwt", "httpx", "cryptography"}


def test_public_names_pinned() -> None:
    assert sorted(hopauth.__all__) == [
        "ACCESS_TOKEN_TYPE",
        "AccessTokenValidator",
        "CacheStats",
        "ClientCredentials",
        "ClientCredentialsAuth",
        "DPoPKey",
        "DPoPProof",
        "DPoPProofValidator",
        "HopAuthError",
        "InvalidDPoPProofError",
        "InvalidTokenError",
        "JWKSCache",
        "KeySource",
        "MemoryReplayCache",
        "MemoryTokenCache",
        "Principal",
        "ReplayCache",
        "RevocationChecker",
        "RevocationUnavailableError",
        "StaticKeySource",
        "TOKEN_EXCHANGE_GRANT",
        "TokenCache",
        "TokenEndpoint",
        "TokenExchangeAuth",
        "TokenExchanger",
        "TokenRequestError",
        "TokenResponse",
        "revoked_session_key",
    ]
    for name in hopauth.__all__:
        assert getattr(hopauth, name) is not None


def top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(SRC.glob("*.py")), ids=lambda p: p.name)
def test_imports_only_stdlib_and_declared_dependencies(path: Path) -> None:
    allowed = set(sys.stdlib_module_names) | CORE_THIRD_PARTY | ADAPTERS.get(path.name, set())
    imported = top_level_imports(path)
    assert imported - allowed == set()
    assert "auth_service" not in imported


def test_importing_hopauth_loads_no_adapter_dependency() -> None:
    code = (
        "import sys, hopauth; "
        "print(sorted(m for m in ('fastapi', 'starlette', 'redis') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


async def test_refusals_never_carry_the_token(
    static_keys: StaticKeySource, make_token: MakeToken
) -> None:
    validator = AccessTokenValidator(issuer=ISSUER, audience=AUDIENCE, keys=static_keys)
    for token in (
        make_token(iss="https://evil.example"),
        make_token(exp=1, iat=0),
        make_token(header={"alg": "ES256", "typ": "at+jwt", "kid": "x"}),
        make_token(sub=""),
        make_token() + "x",
    ):
        with pytest.raises(InvalidTokenError) as caught:
            await validator.validate(token)
        for text in (caught.value.reason, str(caught.value), repr(caught.value)):
            for part in token.split("."):
                assert part not in text


def test_reprs_never_carry_tokens_or_secrets() -> None:
    secret = "gateway-dev-secret-0123456789"
    access_token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"
    http = httpx.AsyncClient()
    endpoint = TokenEndpoint(
        token_url="http://127.0.0.1:8001/token",
        client_id="gateway",
        client_secret=secret,
        http=http,
    )
    response = TokenResponse(
        access_token=access_token,
        token_type="Bearer",
        expires_in=300,
        scope=frozenset({"a"}),
        issued_token_type=None,
        expires_at=0.0,
    )
    credentials = ClientCredentials(endpoint, audience="order", scopes=["a"])
    error = TokenRequestError("invalid_grant", "subject token expired", 400)
    texts = [repr(endpoint), str(endpoint), repr(response), str(response), repr(credentials)]
    texts += [repr(error), str(error), repr(HopAuthError("x")), repr(InvalidTokenError("bad"))]
    for text in texts:
        assert secret not in text
        assert access_token not in text
    assert "gateway" in repr(endpoint)
    assert "Bearer" in repr(response)
