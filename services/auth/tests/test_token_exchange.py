"""RFC 8693 token exchange: one test per rule of the exchange policy (issue: trust core)."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from auth_testing import (
    ACCESS_TOKEN_TYPE,
    ServerThread,
    assert_oauth_error,
    claims,
    client_credentials,
    exchange,
    login,
    mint,
)


@pytest.fixture(scope="module")
def alice_token(auth_server: ServerThread) -> str:
    with httpx.Client(base_url=auth_server.base_url) as http:
        return login(http, "alice").access_token


def test_exchange_reduces_scope_to_what_was_asked(http: httpx.Client, alice_token: str) -> None:
    response = exchange(http, "gateway", alice_token, "order", "orders:read")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "orders:read"
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert body["token_type"] == "Bearer"
    token = claims(body["access_token"])
    subject = claims(alice_token)
    assert token["scope"] == "orders:read"
    assert set(subject["scope"].split()) > {"orders:read"}
    assert token["aud"] == "order"
    assert token["sub"] == subject["sub"]
    assert token["client_id"] == "gateway"
    assert token["sid"] == subject["sid"]
    assert token["act"] == {"sub": "gateway"}
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"


def test_without_scope_the_exchange_issues_subject_and_policy_intersection(
    http: httpx.Client, alice_token: str
) -> None:
    response = exchange(http, "gateway", alice_token, "order")
    assert response.status_code == 200, response.text
    # alice has no support:read, so the policy maximum for order is cut to her scopes.
    assert response.json()["scope"] == "orders:read orders:write"


def test_public_client_cannot_exchange(http: httpx.Client, alice_token: str) -> None:
    response = http.post(
        "/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "client_id": "web",
            "subject_token": alice_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": "order",
        },
    )
    assert_oauth_error(response, 401, "invalid_client")


def test_unauthenticated_exchange_is_refused(http: httpx.Client, alice_token: str) -> None:
    response = http.post(
        "/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": alice_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": "order",
        },
        auth=("gateway", "not-the-secret"),
    )
    assert_oauth_error(response, 401, "invalid_client")


def test_client_without_the_grant_cannot_exchange(http: httpx.Client, alice_token: str) -> None:
    response = exchange(http, "billing-worker", alice_token, "order", "orders:read")
    assert_oauth_error(response, 400, "unauthorized_client")


def test_subject_token_type_must_be_access_token(http: httpx.Client, alice_token: str) -> None:
    response = exchange(
        http,
        "gateway",
        alice_token,
        "order",
        "orders:read",
        subject_token_type="urn:ietf:params:oauth:token-type:id_token",
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_refresh_token_is_not_a_subject_token(http: httpx.Client) -> None:
    refresh = login(http, "alice").refresh_token
    response = exchange(http, "gateway", refresh, "order", "orders:read")
    assert_oauth_error(response, 400, "invalid_request")


def test_id_token_shaped_subject_is_refused(
    http: httpx.Client, auth_server: ServerThread, alice_token: str
) -> None:
    """Same issuer, same key, same claims, but typ JWT (an ID token): refused (RFC 9068 §4)."""
    key = auth_server.app.state.keys.active()
    forged = jwt.encode(
        claims(alice_token),
        key.private_key,
        algorithm="ES256",
        headers={"kid": key.kid, "typ": "JWT"},
    )
    response = exchange(http, "gateway", forged, "order", "orders:read")
    assert_oauth_error(response, 400, "invalid_request")
    assert "typ" in response.json()["error_description"]


def test_token_signed_by_another_key_is_refused(http: httpx.Client, alice_token: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    header = jwt.get_unverified_header(alice_token)
    forged = jwt.encode(
        claims(alice_token), ec.generate_private_key(ec.SECP256R1()), "ES256", headers=header
    )
    response = exchange(http, "gateway", forged, "order", "orders:read")
    assert_oauth_error(response, 400, "invalid_request")


def test_expired_subject_token_is_refused(http: httpx.Client, auth_server: ServerThread) -> None:
    now = int(time.time())
    expired = mint(auth_server, lifetime=1, not_after=now - 120)
    response = exchange(http, "gateway", expired, "order", "orders:read")
    assert_oauth_error(response, 400, "invalid_request")


def test_subject_token_expired_within_the_leeway_is_refused(
    http: httpx.Client, auth_server: ServerThread
) -> None:
    """A token just past exp was exchanged for one already dead: expires_in -5 (RFC 6749 §5.1)."""
    expired = mint(auth_server, scopes=["orders:read"], lifetime=-5)
    response = exchange(http, "gateway", expired, "order", "orders:read")
    assert_oauth_error(response, 400, "invalid_request")
    assert response.json()["error_description"] == "Invalid 'subject_token': expired"


def test_subject_token_of_a_revoked_login_is_refused(http: httpx.Client) -> None:
    session = login(http, "alice")
    assert http.post(
        "/revoke", data={"token": session.refresh_token, "client_id": "web"}
    ).is_success
    response = exchange(http, "gateway", session.access_token, "order", "orders:read")
    assert_oauth_error(response, 400, "invalid_request")


def test_client_can_only_exchange_tokens_sent_to_it(http: httpx.Client, alice_token: str) -> None:
    # alice's token has aud=gateway: order never received it, so order may not exchange it.
    response = exchange(http, "order", alice_token, "inventory", "inventory:reserve")
    assert_oauth_error(response, 400, "invalid_request")
    assert "not issued to this client" in response.json()["error_description"]


def test_target_audience_must_be_allowed_for_the_client(
    http: httpx.Client, alice_token: str
) -> None:
    response = exchange(http, "gateway", alice_token, "inventory", "inventory:reserve")
    assert_oauth_error(response, 400, "invalid_target")


def test_one_audience_per_token(http: httpx.Client, alice_token: str) -> None:
    response = exchange(http, "gateway", alice_token, ["order", "billing"], "orders:read")
    assert_oauth_error(response, 400, "invalid_target")


def test_scope_beyond_the_subject_token_is_refused_not_narrowed(
    http: httpx.Client, alice_token: str
) -> None:
    # support:read is in gateway's policy for order, but alice (a customer) does not hold it.
    response = exchange(http, "gateway", alice_token, "order", "orders:read support:read")
    assert_oauth_error(response, 400, "invalid_scope")
    assert "support:read" in response.json()["error_description"]


def test_scope_beyond_the_policy_is_refused(http: httpx.Client, alice_token: str) -> None:
    # alice holds billing:read, but the policy never lets gateway carry it to order.
    response = exchange(http, "gateway", alice_token, "order", "billing:read")
    assert_oauth_error(response, 400, "invalid_scope")


def test_act_chain_nests_each_hop(http: httpx.Client, alice_token: str) -> None:
    at_order = exchange(http, "gateway", alice_token, "order", "orders:write").json()
    at_inventory = exchange(
        http, "order", at_order["access_token"], "inventory", "inventory:reserve"
    )
    assert at_inventory.status_code == 200, at_inventory.text
    token = claims(at_inventory.json()["access_token"])
    assert token["act"] == {"sub": "order", "act": {"sub": "gateway"}}
    assert token["sub"] == claims(alice_token)["sub"]
    assert token["aud"] == "inventory"
    assert token["scope"] == "inventory:reserve"


def test_derived_scope_needs_its_source_scope(http: httpx.Client, alice_token: str) -> None:
    # A token that may only read orders cannot be turned into a stock reservation.
    read_only = exchange(http, "gateway", alice_token, "order", "orders:read").json()
    response = exchange(http, "order", read_only["access_token"], "inventory", "inventory:reserve")
    assert_oauth_error(response, 400, "invalid_scope")


def test_re_exchange_cannot_widen_scope(http: httpx.Client, alice_token: str) -> None:
    narrowed = exchange(http, "gateway", alice_token, "order", "orders:read").json()
    # order holds a read-only token; asking to exchange it back up is refused.
    response = exchange(http, "order", narrowed["access_token"], "inventory", "orders:write")
    assert_oauth_error(response, 400, "invalid_scope")


def test_re_exchange_cannot_drop_the_act_chain(
    http: httpx.Client, auth_server: ServerThread
) -> None:
    """Whatever the client asks, the subject's chain stays below the new actor."""
    subject = mint(
        auth_server,
        audience="order",
        client_id="gateway",
        scopes=["orders:write"],
        act={"sub": "gateway", "act": {"sub": "edge-proxy"}},
    )
    response = exchange(http, "order", subject, "inventory", "inventory:reserve")
    assert response.status_code == 200, response.text
    act = claims(response.json()["access_token"])["act"]
    assert act == {"sub": "order", "act": {"sub": "gateway", "act": {"sub": "edge-proxy"}}}


def test_overlong_act_chain_is_refused(http: httpx.Client, auth_server: ServerThread) -> None:
    act: dict[str, object] = {"sub": "hop-0"}
    for hop in range(1, 5):
        act = {"sub": f"hop-{hop}", "act": act}
    subject = mint(auth_server, audience="order", scopes=["orders:write"], act=act)
    response = exchange(http, "order", subject, "inventory", "inventory:reserve")
    assert_oauth_error(response, 400, "invalid_request")
    assert "chain too long" in response.json()["error_description"]


def test_exchanged_token_lives_at_most_five_minutes(http: httpx.Client, alice_token: str) -> None:
    body = exchange(http, "gateway", alice_token, "order", "orders:read").json()
    token = claims(body["access_token"])
    assert token["exp"] - token["iat"] <= 300
    assert body["expires_in"] <= 300
    assert token["exp"] <= claims(alice_token)["exp"]


def test_exchanged_token_never_outlives_its_subject(
    http: httpx.Client, auth_server: ServerThread
) -> None:
    subject = mint(auth_server, scopes=["orders:read"], lifetime=60)
    body = exchange(http, "gateway", subject, "order", "orders:read").json()
    assert claims(body["access_token"])["exp"] == claims(subject)["exp"]
    assert body["expires_in"] <= 60


class TestDelegation:
    """Support staff acting for a customer: subject = customer, actor token = staff."""

    def test_actor_token_puts_the_actor_in_the_chain(
        self, http: httpx.Client, alice_token: str
    ) -> None:
        carol = login(http, "carol").access_token
        response = exchange(
            http,
            "gateway",
            alice_token,
            "order",
            "orders:read",
            actor_token=carol,
            actor_token_type=ACCESS_TOKEN_TYPE,
        )
        assert response.status_code == 200, response.text
        token = claims(response.json()["access_token"])
        assert token["sub"] == claims(alice_token)["sub"]
        assert token["act"] == {"sub": "gateway", "act": {"sub": claims(carol)["sub"]}}

    def test_a_delegated_token_gets_no_more_than_the_delegation_scopes(
        self, http: httpx.Client, alice_token: str
    ) -> None:
        carol = login(http, "carol").access_token
        actor = {"actor_token": carol, "actor_token_type": ACCESS_TOKEN_TYPE}
        # alice holds orders:write, but the policy lets a delegated token only read.
        refused = exchange(http, "gateway", alice_token, "order", "orders:write", **actor)
        assert_oauth_error(refused, 400, "invalid_scope")
        unasked = exchange(http, "gateway", alice_token, "order", **actor)
        assert unasked.status_code == 200, unasked.text
        assert unasked.json()["scope"] == "orders:read"

    def test_actor_without_the_delegation_scope_is_refused(
        self, http: httpx.Client, alice_token: str
    ) -> None:
        bob = login(http, "bob").access_token  # a customer, no support:read
        response = exchange(
            http,
            "gateway",
            alice_token,
            "order",
            "orders:read",
            actor_token=bob,
            actor_token_type=ACCESS_TOKEN_TYPE,
        )
        assert_oauth_error(response, 400, "invalid_request")

    def test_delegation_only_where_the_policy_allows_it(
        self, http: httpx.Client, alice_token: str
    ) -> None:
        carol = login(http, "carol").access_token
        response = exchange(
            http,
            "gateway",
            alice_token,
            "billing",
            "billing:read",
            actor_token=carol,
            actor_token_type=ACCESS_TOKEN_TYPE,
        )
        assert_oauth_error(response, 400, "invalid_request")

    def test_actor_token_type_is_required(self, http: httpx.Client, alice_token: str) -> None:
        carol = login(http, "carol").access_token
        response = exchange(http, "gateway", alice_token, "order", "orders:read", actor_token=carol)
        assert_oauth_error(response, 400, "invalid_request")

    def test_may_act_names_who_may_act(self, http: httpx.Client, auth_server: ServerThread) -> None:
        """RFC 8693 §4.4: a subject token's may_act claim is honoured."""
        allowed = mint(auth_server, extra={"may_act": {"sub": "gateway"}})
        response = exchange(http, "gateway", allowed, "order", "orders:read")
        assert response.status_code == 200, response.text

        someone_else = mint(auth_server, extra={"may_act": {"sub": "some-other-service"}})
        response = exchange(http, "gateway", someone_else, "order", "orders:read")
        assert_oauth_error(response, 400, "invalid_request")
        assert "may_act" in response.json()["error_description"]

    @pytest.mark.parametrize(
        "may_act",
        [{}, {"email": "support@example.com"}, {"sub": "gateway", "email": "x@example.com"}],
        ids=["names-nobody", "unchecked-claim", "checked-and-unchecked"],
    )
    def test_may_act_we_cannot_check_allows_no_one(
        self, http: httpx.Client, auth_server: ServerThread, may_act: dict[str, str]
    ) -> None:
        """Fail closed: a may_act identifying the actor by claims we do not compare
        (or by none) used to let any actor through."""
        subject = mint(auth_server, extra={"may_act": may_act})
        response = exchange(http, "gateway", subject, "order", "orders:read")
        assert_oauth_error(response, 400, "invalid_request")
        assert "may_act" in response.json()["error_description"]


def test_client_credentials_token_can_be_exchanged_only_where_sent(http: httpx.Client) -> None:
    """A service's own token (aud=notification) was not sent to gateway: no exchange."""
    own = client_credentials(http, "gateway", "notification").json()["access_token"]
    response = exchange(http, "gateway", own, "order", "orders:read")
    assert_oauth_error(response, 400, "invalid_request")
