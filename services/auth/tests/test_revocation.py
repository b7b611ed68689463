"""Revocation (RFC 7009) and introspection (RFC 7662); the sid cascade to resource servers."""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis
from auth_testing import (
    ServerThread,
    ValkeyServer,
    assert_oauth_error,
    claims,
    client_credentials,
    exchange,
    login,
    mint,
)
from hopauth import AccessTokenValidator, InvalidTokenError, JWKSCache, revoked_session_key
from hopauth.redis_revocation import RedisRevocationChecker

GATEWAY = ("gateway", "gateway-dev-secret")


def introspect(http: httpx.Client, token: str, auth: tuple[str, str] = GATEWAY) -> httpx.Response:
    return http.post("/introspect", data={"token": token}, auth=auth)


async def test_revoking_a_login_kills_every_token_derived_from_it(
    http: httpx.Client, auth_server: ServerThread, valkey: ValkeyServer
) -> None:
    session = login(http, "alice")
    at_order = exchange(http, "gateway", session.access_token, "order", "orders:write").json()
    at_inventory = exchange(
        http, "order", at_order["access_token"], "inventory", "inventory:reserve"
    ).json()

    async with httpx.AsyncClient() as client, aioredis.Redis.from_url(valkey.url) as redis:
        validator = AccessTokenValidator(
            issuer=auth_server.app.state.settings.issuer,
            audience="inventory",
            keys=JWKSCache(issuer=auth_server.app.state.settings.issuer, http=client),
            revocation=RedisRevocationChecker(redis),
        )
        # Before: inventory accepts the twice-exchanged token.
        principal = await validator.validate(at_inventory["access_token"])
        assert principal.actors == ("order", "gateway")

        response = http.post("/revoke", data={"token": session.refresh_token, "client_id": "web"})
        assert response.status_code == 200, response.text

        assert await redis.exists(revoked_session_key(claims(session.access_token)["sid"]))
        with pytest.raises(InvalidTokenError, match="session revoked"):
            await validator.validate(at_inventory["access_token"])

    # The issuer agrees: no refresh, no further exchange, introspection says inactive.
    refreshed = http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": session.refresh_token,
            "client_id": "web",
        },
    )
    assert_oauth_error(refreshed, 400, "invalid_grant")
    assert_oauth_error(
        exchange(http, "gateway", session.access_token, "order", "orders:read"),
        400,
        "invalid_request",
    )
    assert introspect(http, at_order["access_token"], ("order", "order-dev-secret")).json() == {
        "active": False
    }


def test_revoking_an_access_token_revokes_its_session(http: httpx.Client) -> None:
    session = login(http, "alice")
    assert http.post("/revoke", data={"token": session.access_token, "client_id": "web"}).is_success
    assert introspect(http, session.access_token).json() == {"active": False}


def test_unknown_tokens_are_accepted_silently(http: httpx.Client) -> None:
    # RFC 7009 §2.2: an invalid token is not an error for the client.
    response = http.post("/revoke", data={"token": "never-issued", "client_id": "web"})
    assert response.status_code == 200


def test_a_client_cannot_revoke_another_clients_token(http: httpx.Client) -> None:
    session = login(http, "alice")
    response = http.post("/revoke", data={"token": session.refresh_token}, auth=GATEWAY)
    assert_oauth_error(response, 400, "invalid_grant")
    assert introspect(http, session.access_token).json()["active"] is True


def test_introspection_reports_the_act_chain(http: httpx.Client) -> None:
    session = login(http, "alice")
    at_order = exchange(http, "gateway", session.access_token, "order", "orders:read").json()
    body = introspect(http, at_order["access_token"], ("order", "order-dev-secret")).json()
    assert body["active"] is True
    assert body["act"] == {"sub": "gateway"}
    assert body["aud"] == "order"
    assert body["client_id"] == "gateway"
    assert body["scope"] == "orders:read"
    assert body["sub"] == claims(session.access_token)["sub"]


def test_introspection_needs_client_authentication(http: httpx.Client) -> None:
    session = login(http, "alice")
    response = http.post("/introspect", data={"token": session.access_token, "client_id": "web"})
    assert_oauth_error(response, 401, "invalid_client")


def test_introspection_hides_tokens_from_uninvolved_clients(http: httpx.Client) -> None:
    session = login(http, "alice")
    # billing-worker neither received nor requested alice's gateway token.
    body = introspect(
        http, session.access_token, ("billing-worker", "billing-worker-dev-secret")
    ).json()
    assert body == {"active": False}


def test_introspection_of_a_client_credentials_token(http: httpx.Client) -> None:
    token = client_credentials(http, "billing-worker", "order").json()["access_token"]
    body = introspect(http, token, ("order", "order-dev-secret")).json()
    assert body["active"] is True
    assert body["sub"] == "billing-worker"
    assert "sid" not in body and "act" not in body


@pytest.mark.parametrize("lifetime", [-5, -20])
def test_introspection_of_a_token_just_past_exp_is_inactive(
    http: httpx.Client, auth_server: ServerThread, lifetime: int
) -> None:
    """RFC 7662 §2.2: expired is not active, even within the verifier's clock-skew leeway."""
    token = mint(auth_server, audience="gateway", lifetime=lifetime)
    response = introspect(http, token)
    assert response.status_code == 200, response.text
    assert response.json() == {"active": False}


def test_introspection_of_a_live_minted_token_is_active(
    http: httpx.Client, auth_server: ServerThread
) -> None:
    # The case above is inactive for its exp, not for being minted by hand.
    response = introspect(http, mint(auth_server, audience="gateway", lifetime=60))
    assert response.json()["active"] is True, response.text
