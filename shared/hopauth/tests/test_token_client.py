"""TokenEndpoint: request forms (RFC 6749 §4.4.2, RFC 8693 §2.1), client
authentication (RFC 6749 §2.3.1) and error responses (RFC 6749 §5.2)."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest
from hopauth import (
    ACCESS_TOKEN_TYPE,
    TOKEN_EXCHANGE_GRANT,
    HopAuthError,
    TokenEndpoint,
    TokenRequestError,
)
from hopauth_support import FakeTokenEndpoint

TOKEN_URL = "http://127.0.0.1:8001/token"


@pytest.fixture
def endpoint(token_http: httpx.AsyncClient) -> TokenEndpoint:
    return TokenEndpoint(
        token_url=TOKEN_URL,
        client_id="gateway",
        client_secret="gateway-dev-secret",
        http=token_http,
    )


def basic_credentials(authorization: str) -> tuple[str, str]:
    scheme, _, encoded = authorization.partition(" ")
    assert scheme == "Basic"
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return unquote_plus(user), unquote_plus(password)


async def test_client_credentials_request(
    endpoint: TokenEndpoint, token_server: FakeTokenEndpoint
) -> None:
    before = time.time()
    response = await endpoint.client_credentials(
        audience="notification", scopes=["notifications:broadcast", "a:b"]
    )
    assert token_server.requests == [
        {
            "grant_type": "client_credentials",
            "scope": "a:b notifications:broadcast",
            "audience": "notification",
        }
    ]
    assert basic_credentials(token_server.authorizations[0]) == ("gateway", "gateway-dev-secret")
    assert response.token_type == "Bearer"
    assert response.expires_in == 300
    assert response.scope == frozenset({"notifications:broadcast", "a:b"})
    assert before + 300 <= response.expires_at <= time.time() + 300


async def test_client_credentials_without_audience_or_scope(
    endpoint: TokenEndpoint, token_server: FakeTokenEndpoint
) -> None:
    await endpoint.client_credentials(audience=None, scopes=[])
    assert token_server.requests == [{"grant_type": "client_credentials"}]


async def test_client_secret_basic_form_urlencodes_before_base64(
    token_http: httpx.AsyncClient, token_server: FakeTokenEndpoint
) -> None:
    endpoint = TokenEndpoint(
        token_url=TOKEN_URL, client_id="svc:1", client_secret="p@ss word:%+", http=token_http
    )
    await endpoint.client_credentials(audience=None, scopes=[])
    raw = base64.b64decode(token_server.authorizations[0].split(" ")[1]).decode()
    assert raw == "svc%3A1:p%40ss+word%3A%25%2B"
    assert basic_credentials(token_server.authorizations[0]) == ("svc:1", "p@ss word:%+")


async def test_exchange_request(endpoint: TokenEndpoint, token_server: FakeTokenEndpoint) -> None:
    response = await endpoint.exchange(
        subject_token="subject.jwt.value", audience="order", scopes=["orders:read"]
    )
    assert token_server.requests == [
        {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": "subject.jwt.value",
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": "order",
            "requested_token_type": ACCESS_TOKEN_TYPE,
            "scope": "orders:read",
        }
    ]
    assert response.issued_token_type == ACCESS_TOKEN_TYPE


async def test_exchange_with_actor_token(
    endpoint: TokenEndpoint, token_server: FakeTokenEndpoint
) -> None:
    await endpoint.exchange(
        subject_token="subject.jwt.value",
        audience="order",
        scopes=["support:read"],
        actor_token="actor.jwt.value",
    )
    form = token_server.requests[0]
    assert form["actor_token"] == "actor.jwt.value"
    assert form["actor_token_type"] == "urn:ietf:params:oauth:token-type:access_token"


async def test_refusal_raises_token_request_error(
    endpoint: TokenEndpoint, token_server: FakeTokenEndpoint
) -> None:
    token_server.refuse = {"error": "invalid_scope", "error_description": "scope not allowed"}
    with pytest.raises(TokenRequestError) as caught:
        await endpoint.client_credentials(audience="order", scopes=["admin"])
    assert caught.value.error == "invalid_scope"
    assert caught.value.description == "scope not allowed"
    assert caught.value.status_code == 400


async def test_refusal_echoing_the_subject_token_is_redacted(
    endpoint: TokenEndpoint, token_server: FakeTokenEndpoint
) -> None:
    subject = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    token_server.refuse = {
        "error": "invalid_grant",
        "error_description": f"bad subject_token {subject} from gateway-dev-secret",
    }
    with pytest.raises(TokenRequestError) as caught:
        await endpoint.exchange(subject_token=subject, audience="order", scopes=[])
    for text in (str(caught.value), repr(caught.value), caught.value.description or ""):
        assert subject not in text
        assert "gateway-dev-secret" not in text
    assert caught.value.description == "bad subject_token [redacted] from [redacted]"


async def make_endpoint(response: httpx.Response) -> AsyncIterator[TokenEndpoint]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: response)) as http:
        yield TokenEndpoint(
            token_url=TOKEN_URL, client_id="c", client_secret="a-long-secret", http=http
        )


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, "oops", "invalid_response"),
        (401, {"error": "invalid_client"}, "invalid_client"),
        (400, {"error": 7}, "invalid_response"),
    ],
)
async def test_unusual_refusals(status: int, body: Any, error: str) -> None:
    response = (
        httpx.Response(status, json=body)
        if isinstance(body, dict)
        else httpx.Response(status, text=body)
    )
    async for endpoint in make_endpoint(response):
        with pytest.raises(TokenRequestError) as caught:
            await endpoint.client_credentials(audience=None, scopes=[])
        assert (caught.value.error, caught.value.status_code) == (error, status)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"token_type": "Bearer", "expires_in": 60}, "no access_token"),
        ({"access_token": "t", "token_type": "DPoP", "expires_in": 60}, "not Bearer"),
        ({"access_token": "t", "token_type": "bearer"}, "expires_in"),
        ({"access_token": "t", "token_type": "Bearer", "expires_in": "60"}, "expires_in"),
        ({"access_token": "t", "token_type": "Bearer", "expires_in": 0}, "expires_in"),
    ],
)
async def test_unusable_success_responses(body: dict[str, Any], message: str) -> None:
    async for endpoint in make_endpoint(httpx.Response(200, json=body)):
        with pytest.raises(HopAuthError, match=message):
            await endpoint.client_credentials(audience=None, scopes=[])


async def test_scope_omitted_means_requested_scope() -> None:
    body = {"access_token": "t", "token_type": "bearer", "expires_in": 60}
    async for endpoint in make_endpoint(httpx.Response(200, json=body)):
        response = await endpoint.client_credentials(audience=None, scopes=["a", "b"])
        assert response.scope == frozenset({"a", "b"})
