"""Authorization code + PKCE (RFC 6749 §4.1, RFC 7636), login form, code replay."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
from auth_testing import (
    REDIRECT_URI,
    assert_oauth_error,
    authorization_code,
    authorize_params,
    claims,
    exchange,
    login,
    pkce_pair,
    redeem,
)


def test_login_issues_a_user_token_for_the_gateway(http: httpx.Client) -> None:
    session = login(http, "alice")
    token = claims(session.access_token)
    assert token["aud"] == "gateway"
    assert token["client_id"] == "web"
    assert token["iss"] == str(http.base_url).rstrip("/")
    assert token["exp"] - token["iat"] == 900
    assert set(token) >= {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "sid"}
    assert "act" not in token
    # A customer gets the customer scopes, not support:read even though it was asked for.
    assert token["scope"] == "billing:read notifications:read orders:read orders:write"


def test_support_staff_also_get_support_scope(http: httpx.Client) -> None:
    scopes = claims(login(http, "carol").access_token)["scope"].split()
    assert {"support:read", "support:broadcast"} <= set(scopes)


def _login_asking(http: httpx.Client, username: str, scope: str) -> set[str]:
    """The granted scope of a login that asks for ``scope`` (RFC 6749 §3.3)."""
    verifier, challenge = pkce_pair()
    params = authorize_params(challenge, scope=scope)
    posted = http.post(
        "/authorize",
        params=params,
        data={"username": username, "password": f"{username}-dev-password"},
    )
    assert posted.status_code == 302, posted.text
    code = parse_qs(urlsplit(posted.headers["location"]).query)["code"][0]
    response = redeem(http, code, verifier)
    assert response.status_code == 200, response.text
    granted: str = claims(response.json()["access_token"])["scope"]
    return set(granted.split())


def test_broadcasting_is_its_own_scope_and_only_staff_get_it(http: httpx.Client) -> None:
    """``support:broadcast`` comes only when asked for, and only to support staff."""
    asked = "notifications:read support:read support:broadcast"
    assert _login_asking(http, "carol", asked) == set(asked.split())
    # Asked without it, carol's token cannot post a broadcast at the gateway.
    without = "notifications:read support:read"
    assert _login_asking(http, "carol", without) == set(without.split())
    assert _login_asking(http, "carol", "support:broadcast") == {"support:broadcast"}
    # A customer asking for it gets what customers get, without it.
    assert _login_asking(http, "alice", asked) == {"notifications:read"}


def test_support_broadcast_is_never_exchanged_for_a_service(http: httpx.Client) -> None:
    """It is a gateway scope: no exchange policy lists it, so no hop carries it on."""
    carol = login(http, "carol").access_token
    for audience in ("order", "notification"):
        assert_oauth_error(
            exchange(http, "gateway", carol, audience, "support:broadcast"), 400, "invalid_scope"
        )


def test_login_form_is_served_with_protective_headers(http: httpx.Client) -> None:
    _, challenge = pkce_pair()
    response = http.get("/authorize", params=authorize_params(challenge))
    assert response.status_code == 200
    assert 'name="username"' in response.text and 'name="password"' in response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


def test_wrong_password_shows_the_form_again(http: httpx.Client) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(challenge)
    for username in ("alice", "nobody"):
        response = http.post(
            "/authorize", params=params, data={"username": username, "password": "guess"}
        )
        assert response.status_code == 401
        assert "Invalid username or password." in response.text
        assert "location" not in response.headers


def test_code_works_once_and_replay_revokes_its_tokens(http: httpx.Client) -> None:
    code, verifier = authorization_code(http, "alice")
    first = redeem(http, code, verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()

    replay = redeem(http, code, verifier)
    assert_oauth_error(replay, 400, "invalid_grant")

    # RFC 6749 §4.1.2: tokens issued from the replayed code are revoked.
    refreshed = http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "web",
        },
    )
    assert_oauth_error(refreshed, 400, "invalid_grant")
    swapped = exchange(http, "gateway", tokens["access_token"], "order", "orders:read")
    assert_oauth_error(swapped, 400, "invalid_request")
    introspected = http.post(
        "/introspect",
        data={"token": tokens["access_token"]},
        auth=("gateway", "gateway-dev-secret"),
    )
    assert introspected.json() == {"active": False}


def test_wrong_code_verifier_is_refused(http: httpx.Client) -> None:
    code, _ = authorization_code(http, "alice")
    other_verifier, _ = pkce_pair()
    assert_oauth_error(redeem(http, code, other_verifier), 400, "invalid_grant")


def test_missing_code_verifier_is_refused(http: httpx.Client) -> None:
    code, _ = authorization_code(http, "alice")
    response = http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": "web",
        },
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_code_is_bound_to_its_redirect_uri(http: httpx.Client) -> None:
    code, verifier = authorization_code(http, "alice")
    response = http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:8000/elsewhere",
            "client_id": "web",
            "code_verifier": verifier,
        },
    )
    assert_oauth_error(response, 400, "invalid_grant")


def test_pkce_plain_is_refused_with_a_redirect(http: httpx.Client) -> None:
    verifier, _ = pkce_pair()
    params = authorize_params(verifier, code_challenge_method="plain")
    response = http.get("/authorize", params=params)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    assert query["error"] == ["invalid_request"]
    assert query["state"] == ["st4te"]


def test_unregistered_redirect_uri_is_never_redirected_to(http: httpx.Client) -> None:
    _, challenge = pkce_pair()
    for uri in ("https://evil.example/cb", "http://127.0.0.1:8000/callback/../evil"):
        params = authorize_params(challenge, redirect_uri=uri)
        response = http.get("/authorize", params=params)
        assert response.status_code == 400
        assert "location" not in response.headers
        posted = http.post(
            "/authorize",
            params=params,
            data={"username": "alice", "password": "alice-dev-password"},
        )
        assert posted.status_code == 400
        assert "location" not in posted.headers
