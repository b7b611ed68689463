"""Token exchange with ``requested_subject``: support staff acting for a customer.

The gateway holds carol's token (the actor) and the customer's user id, never
a token of the customer's. Each refusal the grant makes has a case here.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from auth_service.app import create_app
from auth_service.db import transaction
from auth_service.models import User
from auth_testing import (
    ACCESS_TOKEN_TYPE,
    EXCHANGE,
    ServerThread,
    assert_oauth_error,
    claims,
    exchange,
    free_port,
    login,
    make_settings,
    mint,
    secret,
)

REFUSED_SUBJECT = "The actor may not act for the requested subject."


def delegate(
    http: httpx.Client,
    actor_token: str | None,
    requested_subject: str | None,
    audience: str = "order",
    scope: str | None = "orders:read",
    client_id: str = "gateway",
    **extra: str,
) -> httpx.Response:
    """What the gateway sends: the staff member's token as actor, the customer by id."""
    data: dict[str, Any] = {"grant_type": EXCHANGE, "audience": audience, **extra}
    if actor_token is not None:
        data["actor_token"] = actor_token
        data["actor_token_type"] = ACCESS_TOKEN_TYPE
    if requested_subject is not None:
        data["requested_subject"] = requested_subject
    if scope is not None:
        data["scope"] = scope
    return http.post("/token", data=data, auth=secret(client_id))


@pytest.fixture(scope="module")
def alice_id(auth_server: ServerThread) -> str:
    with httpx.Client(base_url=auth_server.base_url) as http:
        subject: str = claims(login(http, "alice").access_token)["sub"]
        return subject


@pytest.fixture(scope="module")
def carol_token(auth_server: ServerThread) -> str:
    with httpx.Client(base_url=auth_server.base_url) as http:
        return login(http, "carol").access_token


@pytest.fixture(scope="module")
def other_staff_id(auth_server: ServerThread) -> str:
    """A second support user, straight into the user table (the demo realm has one)."""
    user_id = str(uuid.uuid4())
    with transaction(auth_server.app.state.oauth_server.context.db) as session:
        session.add(
            User(
                id=user_id,
                username=f"dave-{user_id[:8]}",
                password_hash="not-a-usable-hash",
                roles="support",
                email="dave@example.com",
                display_name="Dave Support",
                created_at=int(time.time()),
            )
        )
    return user_id


def test_the_token_names_the_customer_and_carol_acts_under_the_gateway(
    http: httpx.Client, alice_id: str, carol_token: str
) -> None:
    response = delegate(http, carol_token, alice_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "orders:read"
    token = claims(body["access_token"])
    carol = claims(carol_token)
    assert set(token) == {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope",
                          "sid", "act"}  # fmt: skip
    assert token["sub"] == alice_id
    assert token["aud"] == "order"
    assert token["client_id"] == "gateway"
    assert token["scope"] == "orders:read"
    assert token["act"] == {"sub": "gateway", "act": {"sub": carol["sub"]}}
    assert token["iss"] == carol["iss"]
    # carol's login: ending it ends this token as well.
    assert token["sid"] == carol["sid"]
    assert token["exp"] <= carol["exp"]
    assert token["exp"] - token["iat"] <= 300
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"


def test_without_scope_the_delegation_scopes_are_issued(
    http: httpx.Client, alice_id: str, carol_token: str
) -> None:
    response = delegate(http, carol_token, alice_id, scope=None)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "orders:read"


@pytest.mark.parametrize("scope", ["orders:write", "orders:read support:read", "billing:read"])
def test_scope_beyond_the_delegation_is_refused(
    http: httpx.Client, alice_id: str, carol_token: str, scope: str
) -> None:
    assert_oauth_error(delegate(http, carol_token, alice_id, scope=scope), 400, "invalid_scope")


def test_the_token_never_outlives_the_actor(
    http: httpx.Client, auth_server: ServerThread, alice_id: str, carol_token: str
) -> None:
    actor = mint(
        auth_server,
        subject=claims(carol_token)["sub"],
        scopes=["support:read"],
        lifetime=40,
    )
    response = delegate(http, actor, alice_id)
    assert response.status_code == 200, response.text
    assert claims(response.json()["access_token"])["exp"] == claims(actor)["exp"]


def test_an_actor_token_expired_within_the_leeway_is_refused(
    http: httpx.Client, auth_server: ServerThread, alice_id: str, carol_token: str
) -> None:
    """Not a token already dead on issue (exp = the actor's, past)."""
    actor = mint(
        auth_server, subject=claims(carol_token)["sub"], scopes=["support:read"], lifetime=-5
    )
    response = delegate(http, actor, alice_id)
    assert_oauth_error(response, 400, "invalid_request")
    assert response.json()["error_description"] == "Invalid 'actor_token': expired"


def test_the_issuer_logs_who_acted_for_whom(
    http: httpx.Client, alice_id: str, carol_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    def delegated_lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if getattr(r, "event", None) == "token_delegated"]

    with caplog.at_level(logging.INFO):
        response = delegate(http, carol_token, alice_id)
        # The request's line is written just after the answer is sent.
        deadline = time.monotonic() + 5
        while not delegated_lines() and time.monotonic() < deadline:
            time.sleep(0.02)
    assert response.status_code == 200, response.text
    [line] = delegated_lines()
    assert line.requested_subject == alice_id  # type: ignore[attr-defined]
    actor = line.actor_token  # type: ignore[attr-defined]
    assert actor["sub"] == claims(carol_token)["sub"]
    assert actor["jti"] == claims(carol_token)["jti"]
    assert line.issued["jti"] == claims(response.json()["access_token"])["jti"]  # type: ignore[attr-defined]
    assert carol_token not in caplog.text
    assert response.json()["access_token"] not in caplog.text


# Refusals: the request


def test_requested_subject_needs_an_actor_token(http: httpx.Client, alice_id: str) -> None:
    response = delegate(http, None, alice_id)
    assert_oauth_error(response, 400, "invalid_request")
    assert "actor_token" in response.json()["error_description"]


def test_subject_token_and_requested_subject_together_are_refused(
    http: httpx.Client, alice_id: str, carol_token: str
) -> None:
    alice = login(http, "alice").access_token
    both = delegate(
        http,
        carol_token,
        alice_id,
        subject_token=alice,
        subject_token_type=ACCESS_TOKEN_TYPE,
    )
    assert_oauth_error(both, 400, "invalid_request")
    assert "not both" in both.json()["error_description"]
    typed = delegate(http, carol_token, alice_id, subject_token_type=ACCESS_TOKEN_TYPE)
    assert_oauth_error(typed, 400, "invalid_request")


def test_requested_subject_must_not_be_repeated(
    http: httpx.Client, alice_id: str, carol_token: str
) -> None:
    response = http.post(
        "/token",
        data={
            "grant_type": EXCHANGE,
            "audience": "order",
            "actor_token": carol_token,
            "actor_token_type": ACCESS_TOKEN_TYPE,
            "requested_subject": [alice_id, alice_id],
        },
        auth=secret("gateway"),
    )
    assert_oauth_error(response, 400, "invalid_request")


# Refusals: the actor


def test_an_actor_without_support_read_is_refused(http: httpx.Client, alice_id: str) -> None:
    bob = login(http, "bob").access_token  # a customer
    response = delegate(http, bob, alice_id)
    assert_oauth_error(response, 400, "invalid_request")
    assert "support:read" in response.json()["error_description"]


def test_an_actor_token_sent_to_another_service_is_refused(
    http: httpx.Client, alice_id: str, carol_token: str
) -> None:
    at_order = exchange(http, "gateway", carol_token, "order", "support:read").json()
    response = delegate(http, at_order["access_token"], alice_id)
    assert_oauth_error(response, 400, "invalid_request")
    assert "not issued to this client" in response.json()["error_description"]


def test_a_delegated_actor_token_is_refused(
    http: httpx.Client, auth_server: ServerThread, alice_id: str
) -> None:
    actor = mint(auth_server, scopes=["support:read"], act={"sub": "edge-proxy"})
    response = delegate(http, actor, alice_id)
    assert_oauth_error(response, 400, "invalid_request")
    assert "itself be delegated" in response.json()["error_description"]


def test_an_actor_whose_login_was_revoked_is_refused(http: httpx.Client, alice_id: str) -> None:
    carol = login(http, "carol")
    assert delegate(http, carol.access_token, alice_id).status_code == 200
    assert http.post("/revoke", data={"token": carol.refresh_token, "client_id": "web"}).is_success
    response = delegate(http, carol.access_token, alice_id)
    assert_oauth_error(response, 400, "invalid_request")
    assert "revoked" in response.json()["error_description"]


def test_a_forged_actor_token_is_refused(
    http: httpx.Client, alice_id: str, carol_token: str
) -> None:
    response = delegate(http, carol_token[:-4] + "AAAA", alice_id)
    assert_oauth_error(response, 400, "invalid_request")
    assert carol_token not in response.text


# Refusals: the client and the audience


def test_only_audiences_with_a_delegation_entry(
    http: httpx.Client, alice_id: str, carol_token: str
) -> None:
    response = delegate(http, carol_token, alice_id, audience="billing", scope="billing:read")
    assert_oauth_error(response, 400, "invalid_request")
    assert "actor token for audience 'billing'" in response.json()["error_description"]


def test_a_client_without_delegation_is_refused(
    http: httpx.Client, auth_server: ServerThread, alice_id: str
) -> None:
    # order may exchange, but has no delegation entry at all.
    actor = mint(auth_server, audience="order", scopes=["support:read"])
    response = delegate(http, actor, alice_id, client_id="order", audience="inventory", scope=None)
    assert_oauth_error(response, 400, "invalid_request")


def test_a_client_without_token_exchange_is_refused(
    http: httpx.Client, alice_id: str, carol_token: str
) -> None:
    response = delegate(http, carol_token, alice_id, client_id="billing-worker")
    assert_oauth_error(response, 400, "unauthorized_client")


def test_public_clients_cannot_delegate(
    http: httpx.Client, alice_id: str, carol_token: str
) -> None:
    response = http.post(
        "/token",
        data={
            "grant_type": EXCHANGE,
            "client_id": "web",
            "audience": "order",
            "actor_token": carol_token,
            "actor_token_type": ACCESS_TOKEN_TYPE,
            "requested_subject": alice_id,
        },
    )
    assert_oauth_error(response, 401, "invalid_client")


# Refusals: the subject. One answer for all of them: no user enumeration.


def test_who_may_not_be_acted_for_gets_one_answer(
    http: httpx.Client, carol_token: str, other_staff_id: str
) -> None:
    subjects = {
        "unknown": str(uuid.uuid4()),
        "the actor herself": claims(carol_token)["sub"],
        "another support user": other_staff_id,
        "overlong": "x" * 500,
        "a client id": "gateway",
    }
    for what, subject in subjects.items():
        response = delegate(http, carol_token, subject)
        assert_oauth_error(response, 400, "invalid_request")
        assert response.json()["error_description"] == REFUSED_SUBJECT, what


def test_a_delegated_token_is_held_to_the_actor_chain_limit(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """``max_actor_chain`` holds here too: gateway over carol is two actors."""
    port = free_port()
    settings = make_settings(tmp_path_factory.mktemp("auth-chain"), port, max_actor_chain=1)
    with (
        ServerThread(create_app(settings), port) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        carol = login(http, "carol").access_token
        alice = claims(login(http, "alice").access_token)["sub"]
        refused = delegate(http, carol, alice)
    assert_oauth_error(refused, 400, "invalid_request")
    assert "chain too long" in refused.json()["error_description"]
