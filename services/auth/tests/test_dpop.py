"""DPoP at the real auth server (RFC 9449 §5, §6): proofs checked, tokens bound, replays refused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis
from auth_testing import (
    ServerThread,
    ValkeyServer,
    assert_oauth_error,
    authorization_code,
    claims,
    login,
    secret,
)
from dpop_testing import (
    client_credentials,
    exchange,
    forged_proof,
    jwt_claims,
    redeem,
    refresh,
)
from hopauth import DPoPKey


def token_url(server: ServerThread) -> str:
    # htu is the token endpoint as published in discovery: issuer + /token.
    return f"{server.app.state.settings.issuer}/token"


@pytest.fixture
def key() -> DPoPKey:
    return DPoPKey.generate()


def test_discovery_lists_dpop_algorithms(http: httpx.Client) -> None:
    metadata = http.get("/.well-known/oauth-authorization-server").json()
    assert metadata["dpop_signing_alg_values_supported"] == ["ES256"]


def test_client_credentials_with_a_proof_is_bound(
    http: httpx.Client, auth_server: ServerThread, key: DPoPKey
) -> None:
    response = client_credentials(
        http, "billing-worker", "order", key.proof("POST", token_url(auth_server))
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert claims(body["access_token"])["cnf"] == {"jkt": key.thumbprint}


def test_without_a_proof_tokens_stay_bearer(http: httpx.Client) -> None:
    body = client_credentials(http, "billing-worker", "order", None).json()
    assert body["token_type"] == "Bearer"
    assert "cnf" not in claims(body["access_token"])


def test_exchange_with_a_proof_is_bound_to_the_asking_service(
    http: httpx.Client, auth_server: ServerThread
) -> None:
    gateway_key, order_key = DPoPKey.generate(), DPoPKey.generate()
    alice = login(http, "alice").access_token
    to_order = exchange(
        http,
        "gateway",
        alice,
        "order",
        "orders:read orders:write",
        gateway_key.proof("POST", token_url(auth_server)),
    )
    assert to_order.status_code == 200, to_order.text
    assert to_order.json()["token_type"] == "DPoP"
    bound_to_gateway = to_order.json()["access_token"]
    assert claims(bound_to_gateway)["cnf"] == {"jkt": gateway_key.thumbprint}

    # order exchanges the gateway-bound token: it cannot prove the gateway's key, and
    # need not (it authenticates as a client in the token's aud). The new token is
    # bound to order's own key...
    to_inventory = exchange(
        http,
        "order",
        bound_to_gateway,
        "inventory",
        "inventory:reserve",
        order_key.proof("POST", token_url(auth_server)),
    )
    assert to_inventory.status_code == 200, to_inventory.text
    issued = claims(to_inventory.json()["access_token"])
    assert issued["cnf"] == {"jkt": order_key.thumbprint}
    assert issued["act"] == {"sub": "order", "act": {"sub": "gateway"}}
    # ...or a bearer token when order sends no proof.
    unbound = exchange(http, "order", bound_to_gateway, "inventory", "inventory:reserve", None)
    assert unbound.json()["token_type"] == "Bearer"
    assert "cnf" not in claims(unbound.json()["access_token"])


def test_a_thief_without_the_client_secret_cannot_exchange_a_bound_token(
    http: httpx.Client, auth_server: ServerThread, key: DPoPKey
) -> None:
    alice = login(http, "alice").access_token
    url = token_url(auth_server)
    bound = exchange(http, "gateway", alice, "order", "orders:read", key.proof("POST", url))
    stolen = bound.json()["access_token"]
    # The thief even holds the key: still no client authentication, no exchange.
    response = exchange(
        http, None, stolen, "inventory", "inventory:reserve", key.proof("POST", url)
    )
    assert_oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda key, url: key.proof("GET", url), "htm does not match the request method"),
        (
            lambda key, url: key.proof("POST", "http://evil.example/token"),
            "htu does not match the request URL",
        ),
        (lambda key, url: key.proof("POST", url)[:-4] + "AAAA", "invalid signature"),
        (lambda key, url: "not-a-proof", "malformed proof: expected a compact JWS"),
        (lambda key, url: forged_proof(url, iat_offset=-600), "proof too old"),
        (lambda key, url: forged_proof(url, typ="JWT"), "not a DPoP proof (typ)"),
        (lambda key, url: forged_proof(url, private_jwk=True), "jwk contains a private key"),
    ],
    ids=["htm", "htu", "signature", "garbage", "old", "typ", "private-jwk"],
)
def test_bad_proof_is_invalid_dpop_proof(
    http: httpx.Client, auth_server: ServerThread, key: DPoPKey, mutate: Any, reason: str
) -> None:
    response = client_credentials(
        http, "billing-worker", "order", mutate(key, token_url(auth_server))
    )
    assert_oauth_error(response, 400, "invalid_dpop_proof")
    assert response.json()["error_description"] == reason
    assert "access_token" not in response.json()


def test_replayed_proof_is_refused(
    http: httpx.Client, auth_server: ServerThread, key: DPoPKey, valkey: ValkeyServer
) -> None:
    proof = key.proof("POST", token_url(auth_server))
    assert client_credentials(http, "billing-worker", "order", proof).status_code == 200
    # The jti is remembered in Redis, shared by every replica of the issuer.
    store = redis.Redis.from_url(valkey.url)
    try:
        assert store.exists(f"hopauth:dpop-jti:{jwt_claims(proof)['jti']}") == 1
    finally:
        store.close()
    replay = client_credentials(http, "billing-worker", "order", proof)
    assert_oauth_error(replay, 400, "invalid_dpop_proof")
    assert replay.json()["error_description"] == "proof replayed (jti already used)"


def test_two_dpop_headers_are_refused(
    http: httpx.Client, auth_server: ServerThread, key: DPoPKey
) -> None:
    url = token_url(auth_server)
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "audience": "order"},
        auth=secret("billing-worker"),
        headers=[("DPoP", key.proof("POST", url)), ("DPoP", key.proof("POST", url))],
    )
    assert_oauth_error(response, 400, "invalid_dpop_proof")
    assert response.json()["error_description"] == "more than one DPoP header"


def test_introspection_reports_the_binding(
    http: httpx.Client, auth_server: ServerThread, key: DPoPKey
) -> None:
    token = client_credentials(
        http, "billing-worker", "order", key.proof("POST", token_url(auth_server))
    ).json()["access_token"]
    body = http.post("/introspect", data={"token": token}, auth=secret("billing-worker")).json()
    assert body["active"] is True
    assert body["token_type"] == "DPoP"
    assert body["cnf"] == {"jkt": key.thumbprint}
    plain = client_credentials(http, "billing-worker", "order", None).json()["access_token"]
    body = http.post("/introspect", data={"token": plain}, auth=secret("billing-worker")).json()
    assert body["token_type"] == "Bearer" and "cnf" not in body


def test_public_client_tokens_and_refresh_token_are_bound(
    http: httpx.Client, auth_server: ServerThread, key: DPoPKey
) -> None:
    url = token_url(auth_server)
    code, verifier = authorization_code(http, "bob")
    response = redeem(http, code, verifier, key.proof("POST", url))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert claims(body["access_token"])["cnf"] == {"jkt": key.thumbprint}

    # RFC 9449 §5: the refresh token of a public client is good only with a proof of its key.
    assert_oauth_error(refresh(http, body["refresh_token"], None), 400, "invalid_grant")
    thief = DPoPKey.generate().proof("POST", url)
    assert_oauth_error(refresh(http, body["refresh_token"], thief), 400, "invalid_grant")
    # Those attempts neither spent the token nor revoked the login.
    refreshed = refresh(http, body["refresh_token"], key.proof("POST", url))
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["token_type"] == "DPoP"
    assert claims(refreshed.json()["access_token"])["cnf"] == {"jkt": key.thumbprint}
    # The rotated refresh token keeps the binding.
    rotated = refreshed.json()["refresh_token"]
    assert_oauth_error(refresh(http, rotated, None), 400, "invalid_grant")
    assert refresh(http, rotated, key.proof("POST", url)).status_code == 200


def test_unbound_login_stays_unbound(http: httpx.Client) -> None:
    bob = login(http, "bob")
    response = refresh(http, bob.refresh_token, None)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"


def test_user_directory_takes_a_bound_token_only_with_its_proof(
    http: httpx.Client, auth_server: ServerThread, key: DPoPKey
) -> None:
    body = client_credentials(
        http, "notification-worker", "auth", key.proof("POST", token_url(auth_server))
    ).json()
    token = body["access_token"]
    alice_id = claims(login(http, "alice").access_token)["sub"]
    path = f"/users/{alice_id}"
    url = f"{auth_server.base_url}{path}"
    ok = http.get(
        path,
        headers={
            "Authorization": f"DPoP {token}",
            "DPoP": key.proof("GET", url, access_token=token),
        },
    )
    assert ok.status_code == 200, ok.text
    as_bearer = http.get(path, headers={"Authorization": f"Bearer {token}"})
    assert as_bearer.status_code == 401
    assert as_bearer.json()["detail"] == "DPoP-bound token presented as a bearer token"
