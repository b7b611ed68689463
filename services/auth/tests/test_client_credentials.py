"""Client credentials (RFC 6749 §4.4): a service acting as itself."""

from __future__ import annotations

import httpx
from auth_testing import assert_oauth_error, claims, client_credentials


def test_token_carries_no_user_context(http: httpx.Client) -> None:
    response = client_credentials(http, "billing-worker", "order", "orders:read")
    assert response.status_code == 200, response.text
    token = claims(response.json()["access_token"])
    assert token["sub"] == token["client_id"] == "billing-worker"
    assert token["aud"] == "order"
    assert token["scope"] == "orders:read"
    assert "sid" not in token and "act" not in token
    assert token["exp"] - token["iat"] <= 300


def test_audience_defaults_when_the_client_has_only_one(http: httpx.Client) -> None:
    response = client_credentials(http, "billing-worker", None)
    assert response.status_code == 200, response.text
    assert claims(response.json()["access_token"])["aud"] == "order"


def test_audience_required_when_the_client_has_several(http: httpx.Client) -> None:
    assert_oauth_error(client_credentials(http, "order", None), 400, "invalid_request")


def test_each_audience_gets_only_its_scopes(http: httpx.Client) -> None:
    body = client_credentials(http, "order", "billing").json()
    assert body["scope"] == "payments:refund payments:verify"
    assert claims(body["access_token"])["aud"] == "billing"


def test_unregistered_scope_is_refused(http: httpx.Client) -> None:
    response = client_credentials(http, "billing-worker", "order", "orders:read orders:write")
    assert_oauth_error(response, 400, "invalid_scope")


def test_unregistered_audience_is_refused(http: httpx.Client) -> None:
    response = client_credentials(http, "billing-worker", "billing", None)
    assert_oauth_error(response, 400, "invalid_target")


def test_public_client_cannot_use_client_credentials(http: httpx.Client) -> None:
    response = http.post("/token", data={"grant_type": "client_credentials", "client_id": "web"})
    assert_oauth_error(response, 401, "invalid_client")


def test_client_without_the_grant_is_refused(http: httpx.Client) -> None:
    response = http.post(
        "/token",
        data={"grant_type": "authorization_code", "code": "x", "redirect_uri": "http://x/"},
        auth=("billing-worker", "billing-worker-dev-secret"),
    )
    assert_oauth_error(response, 400, "unauthorized_client")


def test_secret_can_be_posted_in_the_body(http: httpx.Client) -> None:
    response = http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "billing-worker",
            "client_secret": "billing-worker-dev-secret",
        },
    )
    assert response.status_code == 200, response.text


def test_body_client_id_must_match_the_basic_credentials(http: httpx.Client) -> None:
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "audience": "order", "client_id": "order"},
        auth=("billing-worker", "billing-worker-dev-secret"),
    )
    assert_oauth_error(response, 400, "invalid_request")
