"""TokenEndpoint.delegate: the ``requested_subject`` form of a token exchange.

The request form is checked here; services/auth/tests/test_library_end_to_end.py
runs the same call against the real issuer.
"""

from __future__ import annotations

import httpx
import pytest
from hopauth import (
    ACCESS_TOKEN_TYPE,
    TOKEN_EXCHANGE_GRANT,
    TokenEndpoint,
    TokenExchanger,
    TokenRequestError,
)
from hopauth_support import FakeTokenEndpoint

ACTOR = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjYXJvbCJ9.c2lnbmF0dXJl"


@pytest.fixture
def endpoint(token_http: httpx.AsyncClient) -> TokenEndpoint:
    return TokenEndpoint(
        token_url="http://127.0.0.1:8001/token",
        client_id="gateway",
        client_secret="gateway-dev-secret",
        http=token_http,
    )


async def test_delegate_sends_the_actor_and_names_the_subject(
    endpoint: TokenEndpoint, token_server: FakeTokenEndpoint
) -> None:
    response = await endpoint.delegate(
        actor_token=ACTOR, requested_subject="alice-id", audience="order", scopes=["orders:read"]
    )
    assert token_server.requests == [
        {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "actor_token": ACTOR,
            "actor_token_type": ACCESS_TOKEN_TYPE,
            "requested_subject": "alice-id",
            "audience": "order",
            "requested_token_type": ACCESS_TOKEN_TYPE,
            "scope": "orders:read",
        }
    ]
    assert token_server.authorizations[0].startswith("Basic ")
    assert response.scope == frozenset({"orders:read"})
    assert response.issued_token_type == ACCESS_TOKEN_TYPE


async def test_delegate_is_never_cached(
    endpoint: TokenEndpoint, token_server: FakeTokenEndpoint
) -> None:
    first, second = [
        await endpoint.delegate(
            actor_token=ACTOR, requested_subject="alice-id", audience="order", scopes=[]
        )
        for _ in range(2)
    ]
    assert first.access_token != second.access_token
    assert len(token_server.requests) == 2
    assert "scope" not in token_server.requests[0]


async def test_a_refusal_echoing_the_actor_token_is_redacted(
    endpoint: TokenEndpoint, token_server: FakeTokenEndpoint
) -> None:
    token_server.refuse = {"error": "invalid_request", "error_description": f"bad actor {ACTOR}"}
    with pytest.raises(TokenRequestError) as caught:
        await endpoint.delegate(
            actor_token=ACTOR, requested_subject="alice-id", audience="order", scopes=[]
        )
    assert caught.value.error == "invalid_request"
    assert caught.value.description == "bad actor [redacted]"
    assert ACTOR not in str(caught.value)


def test_the_exchanger_hands_out_its_endpoint(endpoint: TokenEndpoint) -> None:
    assert TokenExchanger(endpoint).endpoint is endpoint
