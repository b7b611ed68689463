"""The user directory: only the notification worker, by client credentials, reads contacts."""

from __future__ import annotations

import httpx
from auth_testing import ServerThread, claims, client_credentials, login, mint


def test_notification_worker_reads_a_customers_contact(http: httpx.Client) -> None:
    alice = claims(login(http, "alice").access_token)["sub"]
    token = client_credentials(http, "notification-worker", "auth", "users:read").json()
    response = http.get(
        f"/users/{alice}", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": alice,
        "username": "alice",
        "email": "alice@example.com",
        "display_name": "Alice Example",
    }
    # No password hash, no roles: only what a notification needs.
    unknown = http.get(
        "/users/nobody", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


def test_other_callers_and_user_tokens_are_refused(
    http: httpx.Client, auth_server: ServerThread
) -> None:
    session = login(http, "alice")
    alice = claims(session.access_token)["sub"]

    missing = http.get(f"/users/{alice}")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")

    user_token = http.get(
        f"/users/{alice}", headers={"Authorization": f"Bearer {session.access_token}"}
    )
    assert user_token.status_code == 401  # aud=gateway, not auth
    assert 'error="invalid_token"' in user_token.headers["www-authenticate"]

    other = mint(
        auth_server,
        subject="billing-worker",
        audience="auth",
        client_id="billing-worker",
        scopes=["users:read"],
    )
    wrong_caller = http.get(f"/users/{alice}", headers={"Authorization": f"Bearer {other}"})
    assert wrong_caller.status_code == 403
    assert wrong_caller.json()["type"].endswith("forbidden-caller")
