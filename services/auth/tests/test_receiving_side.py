"""The seed's three tests, made real: hopauth validating tokens from the running issuer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from auth_testing import ServerThread, client_credentials, exchange, login
from hopauth import AccessTokenValidator, InvalidTokenError, JWKSCache


@pytest.fixture
async def keys(auth_server: ServerThread) -> AsyncIterator[JWKSCache]:
    async with httpx.AsyncClient() as client:
        yield JWKSCache(issuer=auth_server.app.state.settings.issuer, http=client)


def validator_for(
    auth_server: ServerThread, keys: JWKSCache, audience: str
) -> AccessTokenValidator:
    return AccessTokenValidator(
        issuer=auth_server.app.state.settings.issuer, audience=audience, keys=keys
    )


async def test_exchange_reduces_scope(
    http: httpx.Client, auth_server: ServerThread, keys: JWKSCache
) -> None:
    alice = login(http, "alice").access_token
    user = await validator_for(auth_server, keys, "gateway").validate(alice)
    exchanged = exchange(http, "gateway", alice, "order", "orders:read").json()["access_token"]
    principal = await validator_for(auth_server, keys, "order").validate(exchanged)
    assert principal.scopes == frozenset({"orders:read"})
    assert principal.scopes < user.scopes
    assert principal.subject == user.subject
    assert principal.current_actor == "gateway"
    assert principal.caller == "gateway"


async def test_client_credentials_token_has_no_user_context(
    http: httpx.Client, auth_server: ServerThread, keys: JWKSCache
) -> None:
    token = client_credentials(http, "billing-worker", "order").json()["access_token"]
    principal = await validator_for(auth_server, keys, "order").validate(token)
    assert principal.is_service
    assert principal.subject == principal.client_id == principal.caller == "billing-worker"
    assert principal.session_id is None
    assert principal.actors == ()


async def test_token_for_another_service_is_refused(
    http: httpx.Client, auth_server: ServerThread, keys: JWKSCache
) -> None:
    alice = login(http, "alice").access_token
    at_billing = exchange(http, "gateway", alice, "billing", "billing:read").json()["access_token"]
    for audience in ("order", "inventory", "gateway"):
        with pytest.raises(InvalidTokenError):
            await validator_for(auth_server, keys, audience).validate(at_billing)
    assert (await validator_for(auth_server, keys, "billing").validate(at_billing)).scopes == {
        "billing:read"
    }
