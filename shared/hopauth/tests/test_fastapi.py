"""hopauth.fastapi: RFC 6750 challenges and RFC 9457 problem bodies, through ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from hopauth import AccessTokenValidator, Principal, StaticKeySource
from hopauth.fastapi import BearerToken, Requires, install_problem_handlers
from hopauth_support import AUDIENCE, ISSUER, KID, MakeToken

PROBLEM = "application/problem+json"


def build_app(validator: AccessTokenValidator | None, *, handlers: bool = True) -> FastAPI:
    app = FastAPI()
    if validator is not None:
        app.state.hopauth_validator = validator
    if handlers:
        install_problem_handlers(app)

    @app.get("/orders")
    async def orders(
        request: Request,
        principal: Annotated[Principal, Depends(Requires("orders:read", callers={"gateway"}))],
        token: BearerToken,
    ) -> dict[str, Any]:
        return {
            "subject": principal.subject,
            "caller": principal.caller,
            "stored": request.state.principal is principal,
            "token_length": len(token),
        }

    @app.get("/admin")
    async def admin(
        principal: Annotated[Principal, Depends(Requires("admin:write", "orders:read"))],
    ) -> dict[str, str]:
        return {"subject": principal.subject}

    return app


@pytest.fixture
async def client(static_keys: StaticKeySource) -> AsyncIterator[httpx.AsyncClient]:
    validator = AccessTokenValidator(issuer=ISSUER, audience=AUDIENCE, keys=static_keys)
    transport = httpx.ASGITransport(app=build_app(validator))
    async with httpx.AsyncClient(transport=transport, base_url="http://order") as http:
        yield http


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


async def test_valid_token_passes(client: httpx.AsyncClient, make_token: MakeToken) -> None:
    token = make_token()
    response = await client.get("/orders", headers=bearer(token, "bearer"))
    assert response.status_code == 200
    assert response.json() == {
        "subject": "alice",
        "caller": "gateway",
        "stored": True,
        "token_length": len(token),
    }


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic dXNlcjpwYXNz"}])
async def test_missing_token_challenge_has_no_error_code(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/orders", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer realm="{AUDIENCE}"'
    assert response.headers["content-type"] == PROBLEM
    assert response.json() == {
        "type": "urn:hopauth:problem:missing-token",
        "title": "Unauthorized",
        "status": 401,
        "detail": "a bearer token is required",
    }


@pytest.mark.parametrize(
    ("authorization", "description"),
    [
        ("Bearer not-a-jwt", "malformed token: expected three parts"),
        ("Bearer ", "malformed bearer token"),
        ("Bearer a b", "malformed bearer token"),
        ('Bearer tok"en', "malformed bearer token"),
    ],
)
async def test_invalid_token_challenge(
    client: httpx.AsyncClient, authorization: str, description: str
) -> None:
    response = await client.get("/orders", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="{AUDIENCE}", error="invalid_token", error_description="{description}"'
    )
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:hopauth:problem:invalid-token"
    assert body["detail"] == description


async def test_expired_token_challenge(client: httpx.AsyncClient, make_token: MakeToken) -> None:
    response = await client.get("/orders", headers=bearer(make_token(exp=1, iat=0)))
    assert response.status_code == 401
    assert 'error_description="token expired"' in response.headers["www-authenticate"]


async def test_insufficient_scope(client: httpx.AsyncClient, make_token: MakeToken) -> None:
    response = await client.get("/admin", headers=bearer(make_token()))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="{AUDIENCE}", error="insufficient_scope", scope="admin:write orders:read"'
    )
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:hopauth:problem:insufficient-scope"


async def test_wrong_caller_forbidden_without_scope_challenge(
    client: httpx.AsyncClient, make_token: MakeToken
) -> None:
    # Right scopes, but presented by billing, not the gateway.
    token = make_token(client_id="billing", act={"sub": "billing"})
    response = await client.get("/orders", headers=bearer(token))
    assert response.status_code == 403
    assert "www-authenticate" not in response.headers
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:hopauth:problem:forbidden-caller"
    assert body["status"] == 403
    assert "billing" in body["detail"]


async def test_missing_validator_is_a_programming_error(make_token: MakeToken) -> None:
    transport = httpx.ASGITransport(app=build_app(None))
    async with httpx.AsyncClient(transport=transport, base_url="http://order") as http:
        with pytest.raises(RuntimeError, match="hopauth_validator"):
            await http.get("/orders", headers=bearer(make_token()))


async def test_without_problem_handlers_status_and_challenge_survive(
    static_keys: StaticKeySource,
) -> None:
    validator = AccessTokenValidator(issuer=ISSUER, audience=AUDIENCE, keys=static_keys)
    transport = httpx.ASGITransport(app=build_app(validator, handlers=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://order") as http:
        response = await http.get("/orders")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer realm="{AUDIENCE}"'


async def test_refused_token_never_logged(
    client: httpx.AsyncClient, make_token: MakeToken, caplog: pytest.LogCaptureFixture
) -> None:
    token = make_token(header={"alg": "ES256", "typ": "JWT", "kid": KID})
    with caplog.at_level("DEBUG"):
        response = await client.get("/orders", headers=bearer(token))
    assert response.status_code == 401
    assert caplog.records, "the refusal should be logged"
    assert all(token not in record.getMessage() for record in caplog.records)
    assert token not in response.text


def test_protected_routes_declare_the_bearer_scheme_in_openapi(
    static_keys: StaticKeySource,
) -> None:
    validator = AccessTokenValidator(issuer=ISSUER, audience=AUDIENCE, keys=static_keys)
    schema = build_app(validator).openapi()
    schemes = schema["components"]["securitySchemes"]
    [(name, scheme)] = schemes.items()
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    secured = [
        path
        for path, operations in schema["paths"].items()
        for operation in operations.values()
        if {name: []} in operation.get("security", [])
    ]
    assert secured, "routes guarded by Requires must show the bearer scheme"
