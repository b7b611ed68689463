"""Refresh tokens (RFC 6749 §6): rotation, and reuse kills the family (RFC 9700 §4.14.2)."""

from __future__ import annotations

import httpx
from auth_testing import assert_oauth_error, claims, exchange, login


def refresh(http: httpx.Client, token: str, scope: str | None = None) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": "web"}
    if scope is not None:
        data["scope"] = scope
    return http.post("/token", data=data)


def test_refresh_rotates_the_refresh_token(http: httpx.Client) -> None:
    session = login(http, "alice")
    response = refresh(http, session.refresh_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["refresh_token"] != session.refresh_token
    new = claims(body["access_token"])
    old = claims(session.access_token)
    assert new["sid"] == old["sid"]
    assert new["jti"] != old["jti"]
    assert new["aud"] == "gateway"


def test_refresh_can_narrow_but_not_widen_scope(http: httpx.Client) -> None:
    session = login(http, "alice")
    narrowed = refresh(http, session.refresh_token, "orders:read")
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "orders:read"
    # The rotated refresh token keeps the original grant (RFC 6749 §6).
    again = refresh(http, narrowed.json()["refresh_token"])
    assert again.status_code == 200, again.text
    assert "orders:write" in again.json()["scope"].split()
    widened = refresh(http, again.json()["refresh_token"], "orders:read support:read")
    assert_oauth_error(widened, 400, "invalid_scope")


def test_reusing_a_spent_refresh_token_revokes_the_family(http: httpx.Client) -> None:
    session = login(http, "alice")
    rotated = refresh(http, session.refresh_token).json()

    reuse = refresh(http, session.refresh_token)
    assert_oauth_error(reuse, 400, "invalid_grant")

    # The legitimate successor dies too, and so do the family's access tokens.
    assert_oauth_error(refresh(http, rotated["refresh_token"]), 400, "invalid_grant")
    for token in (session.access_token, rotated["access_token"]):
        assert_oauth_error(
            exchange(http, "gateway", token, "order", "orders:read"), 400, "invalid_request"
        )


def test_refresh_token_is_bound_to_its_client(http: httpx.Client) -> None:
    session = login(http, "alice")
    response = http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": session.refresh_token},
        auth=("gateway", "gateway-dev-secret"),
    )
    assert_oauth_error(response, 400, "unauthorized_client")
