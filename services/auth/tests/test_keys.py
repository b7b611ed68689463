"""Discovery, JWKS and signing-key rotation."""

from __future__ import annotations

import httpx
from auth_testing import ServerThread, claims, exchange, login
from hopauth import AccessTokenValidator, JWKSCache


def test_discovery_document(http: httpx.Client, auth_server: ServerThread) -> None:
    issuer = auth_server.app.state.settings.issuer
    metadata = http.get("/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == issuer
    assert metadata["jwks_uri"] == f"{issuer}/jwks"
    assert metadata["token_endpoint"] == f"{issuer}/token"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert "urn:ietf:params:oauth:grant-type:token-exchange" in metadata["grant_types_supported"]
    assert http.get("/.well-known/openid-configuration").json() == metadata


def test_jwks_publishes_es256_keys_with_kid(http: httpx.Client) -> None:
    keys = http.get("/jwks").json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256"
        assert key["kid"] and key["use"] == "sig"
        assert "d" not in key  # never the private part


async def test_rotation_causes_no_failed_request(
    http: httpx.Client, auth_server: ServerThread
) -> None:
    issuer = auth_server.app.state.settings.issuer
    old_token = login(http, "alice").access_token
    async with httpx.AsyncClient() as client:
        validator = AccessTokenValidator(
            issuer=issuer, audience="gateway", keys=JWKSCache(issuer=issuer, http=client)
        )
        await validator.validate(old_token)  # warms the cache with the old key only

        new_kid = auth_server.app.state.keys.rotate()
        new_token = login(http, "alice").access_token
        assert claims(new_token) and new_kid != _kid(old_token)
        assert _kid(new_token) == new_kid

        # The new kid is unknown to the cache: one refetch, and both tokens pass.
        assert (await validator.validate(new_token)).subject == claims(new_token)["sub"]
        assert (await validator.validate(old_token)).subject == claims(old_token)["sub"]

    kids = {key["kid"] for key in http.get("/jwks").json()["keys"]}
    assert {new_kid, _kid(old_token)} <= kids
    # The issuer still accepts tokens signed by the retired key.
    assert exchange(http, "gateway", old_token, "order", "orders:read").status_code == 200


def _kid(token: str) -> str:
    import jwt

    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


def test_next_key_is_published_before_it_signs(
    http: httpx.Client, auth_server: ServerThread
) -> None:
    signing = _kid(login(http, "alice").access_token)
    published = {key["kid"] for key in http.get("/jwks").json()["keys"]}
    upcoming = published - {signing}
    assert upcoming, "a next key must be in the JWKS before any rotation"

    promoted = auth_server.app.state.keys.rotate()
    assert promoted in upcoming
    assert _kid(login(http, "alice").access_token) == promoted
