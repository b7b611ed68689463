"""Broadcasts: the gateway's own client-credentials token, and no user context at all."""

from __future__ import annotations

import uuid

import httpx
from auth_testing import claims, exchange, mint
from hopkit.testing import ServerThread
from notification_testing import Customer, assert_problem, bearer, notifications


def _message() -> str:
    return f"The shop closes early today ({uuid.uuid4().hex[:8]})."


def test_a_broadcast_reaches_every_customer_and_names_no_user(
    http: httpx.Client, gateway: str, alice: Customer, bob: Customer
) -> None:
    token = claims(gateway)
    assert token["sub"] == token["client_id"] == "gateway"
    assert "act" not in token and "sid" not in token

    message = _message()
    response = http.post("/broadcasts", json={"message": f"  {message}\n"}, headers=bearer(gateway))
    assert response.status_code == 201, response.text
    posted = response.json()
    assert posted["kind"] == "broadcast"
    assert posted["broadcast"] is True
    assert posted["order_id"] is None
    assert posted["message"] == message  # surrounding whitespace trimmed

    for who in (alice, bob):
        [seen] = [n for n in notifications(http, who.token) if n["message"] == message]
        assert seen == posted


def test_the_list_is_newest_first_and_limited(
    http: httpx.Client, gateway: str, alice: Customer
) -> None:
    first, second = _message(), _message()
    for message in (first, second):
        posted = http.post("/broadcasts", json={"message": message}, headers=bearer(gateway))
        assert posted.status_code == 201, posted.text
    latest = [n for n in notifications(http, alice.token, broadcasts=2) if n["broadcast"]]
    assert [n["message"] for n in latest] == [second, first]
    newest = notifications(http, alice.token, broadcasts=1)
    assert [n["message"] for n in newest if n["broadcast"]] == [second]


def test_a_customers_exchanged_token_cannot_broadcast(http: httpx.Client, alice: Customer) -> None:
    response = http.post("/broadcasts", json={"message": _message()}, headers=bearer(alice.token))
    assert_problem(response, 403, "urn:hopauth:problem:insufficient-scope")
    assert 'scope="notifications:broadcast"' in response.headers["www-authenticate"]


def test_the_issuer_never_gives_a_user_the_broadcast_scope(
    auth: httpx.Client, alice: Customer
) -> None:
    refused = exchange(
        auth, "gateway", alice.login_token, "notification", "notifications:broadcast"
    )
    assert refused.status_code == 400, refused.text
    assert "access_token" not in refused.json()


def test_a_broadcast_token_that_carries_a_user_is_refused(
    http: httpx.Client, auth_server: ServerThread, alice: Customer
) -> None:
    # The policy never issues these; the service refuses them anyway (defence in depth).
    delegated = mint(
        auth_server,
        audience="notification",
        client_id="gateway",
        subject=alice.user_id,
        scopes=["notifications:broadcast"],
        act={"sub": "gateway"},
    )
    impersonating = mint(
        auth_server,
        audience="notification",
        client_id="gateway",
        subject=alice.user_id,
        scopes=["notifications:broadcast"],
    )
    message = _message()
    for token in (delegated, impersonating):
        response = http.post("/broadcasts", json={"message": message}, headers=bearer(token))
        assert_problem(response, 403, "user-context-refused")
    assert [n for n in notifications(http, alice.token) if n["message"] == message] == []


def test_only_the_gateway_may_broadcast(
    http: httpx.Client, auth_server: ServerThread, auth: httpx.Client
) -> None:
    other = mint(
        auth_server,
        audience="notification",
        client_id="order",
        subject="order",
        scopes=["notifications:broadcast"],
    )
    response = http.post("/broadcasts", json={"message": _message()}, headers=bearer(other))
    assert_problem(response, 403, "urn:hopauth:problem:forbidden-caller")


def test_a_user_login_token_is_refused(http: httpx.Client, alice: Customer) -> None:
    response = http.post(
        "/broadcasts", json={"message": _message()}, headers=bearer(alice.login_token)
    )
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
