"""Reading notifications takes a token exchanged for the customer, made for this hop."""

from __future__ import annotations

import httpx
from auth_testing import claims, exchange, login, mint
from hopkit.testing import ServerThread
from notification_testing import Customer, assert_problem, bearer, service_token


def test_the_read_token_is_the_customer_delegated_through_the_gateway(alice: Customer) -> None:
    token = claims(alice.token)
    assert token["aud"] == "notification"
    assert token["scope"] == "notifications:read"
    assert token["sub"] == alice.user_id
    assert token["act"] == {"sub": "gateway"}


def test_no_token_gets_a_bare_challenge(http: httpx.Client) -> None:
    response = http.get("/notifications")
    assert_problem(response, 401, "urn:hopauth:problem:missing-token")
    assert response.headers["www-authenticate"] == 'Bearer realm="notification"'


def test_the_users_login_token_is_refused(http: httpx.Client, alice: Customer) -> None:
    response = http.get("/notifications", headers=bearer(alice.login_token))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="notification", error="invalid_token"')
    assert "audience" in challenge


def test_a_token_made_for_another_service_is_refused(
    http: httpx.Client, alice: Customer, auth: httpx.Client
) -> None:
    for_billing = exchange(auth, "gateway", alice.login_token, "billing", "billing:read")
    assert for_billing.status_code == 200, for_billing.text
    response = http.get("/notifications", headers=bearer(for_billing.json()["access_token"]))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")


def test_the_broadcast_token_cannot_read(http: httpx.Client, gateway: str) -> None:
    response = http.get("/notifications", headers=bearer(gateway))
    assert_problem(response, 403, "urn:hopauth:problem:insufficient-scope")


def test_a_read_token_without_a_user_is_refused(
    http: httpx.Client, auth_server: ServerThread
) -> None:
    # A client-credentials token would list only broadcasts; reading is a customer's act.
    token = mint(
        auth_server,
        audience="notification",
        client_id="gateway",
        subject="gateway",
        scopes=["notifications:read"],
    )
    assert_problem(http.get("/notifications", headers=bearer(token)), 403, "user-context-required")


def test_only_the_gateway_may_present_a_customers_token(
    http: httpx.Client, auth_server: ServerThread, alice: Customer
) -> None:
    token = mint(
        auth_server,
        audience="notification",
        client_id="order",
        subject=alice.user_id,
        scopes=["notifications:read"],
        act={"sub": "order", "act": {"sub": "gateway"}},
    )
    response = http.get("/notifications", headers=bearer(token))
    assert_problem(response, 403, "urn:hopauth:problem:forbidden-caller")


def test_the_worker_token_cannot_read(http: httpx.Client, auth: httpx.Client) -> None:
    token = service_token(auth, "notification-worker", "auth", "users:read")
    assert_problem(http.get("/notifications", headers=bearer(token)), 401)


def test_a_logged_out_session_cannot_read(http: httpx.Client, auth: httpx.Client) -> None:
    session = login(auth, "bob")
    token = exchange(
        auth, "gateway", session.access_token, "notification", "notifications:read"
    ).json()["access_token"]
    assert http.get("/notifications", headers=bearer(token)).status_code == 200
    logout = auth.post("/revoke", data={"token": session.refresh_token, "client_id": "web"})
    assert logout.status_code == 200, logout.text
    response = http.get("/notifications", headers=bearer(token))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert "session revoked" in response.headers["www-authenticate"]
