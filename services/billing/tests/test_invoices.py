"""GET /invoices: a customer's own invoices, for the gateway, with a token made for billing."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from auth_testing import claims, client_credentials, exchange, login, mint
from billing_testing import add_invoice, assert_problem, bearer, invoice_token, subject_of
from hopkit.testing import ServerThread


@pytest.fixture(scope="module")
def alice(auth: httpx.Client) -> str:
    return invoice_token(auth, "alice")


@pytest.fixture(scope="module")
def bob(auth: httpx.Client) -> str:
    return invoice_token(auth, "bob")


def test_the_invoice_token_is_alice_delegated_through_the_gateway(alice: str) -> None:
    token = claims(alice)
    assert token["aud"] == "billing"
    assert token["scope"] == "billing:read"
    assert token["client_id"] == "gateway"
    assert token["act"] == {"sub": "gateway"}


def test_each_customer_sees_only_their_own_invoices(
    http: httpx.Client, api_database_url: str, alice: str, bob: str
) -> None:
    paid = add_invoice(api_database_url, subject_of(alice), amount_cents=2490)
    declined = add_invoice(api_database_url, subject_of(alice), status="DECLINED")
    bobs = add_invoice(api_database_url, subject_of(bob))

    response = http.get("/invoices", headers=bearer(alice))
    assert response.status_code == 200, response.text
    mine = {invoice["id"]: invoice for invoice in response.json()}
    assert set(mine) >= {paid.id, declined.id}
    assert bobs.id not in mine
    assert set(mine[paid.id]) == {
        "id",
        "order_id",
        "status",
        "amount_cents",
        "currency",
        "created_at",
    }
    assert mine[paid.id]["order_id"] == paid.order_id
    assert (mine[paid.id]["status"], mine[paid.id]["amount_cents"]) == ("PAID", 2490)
    assert mine[paid.id]["currency"] == "EUR"
    assert mine[declined.id]["status"] == "DECLINED"
    created = datetime.fromisoformat(mine[paid.id]["created_at"])
    assert created.utcoffset() == timedelta(0)  # an instant, not a wall-clock reading
    assert abs(created - paid.created_at) < timedelta(seconds=1)
    # Newest first.
    ids = [invoice["id"] for invoice in response.json()]
    assert ids.index(declined.id) < ids.index(paid.id)

    theirs = http.get("/invoices", headers=bearer(bob)).json()
    assert [invoice["id"] for invoice in theirs] == [bobs.id]


def test_no_token_gets_a_bare_challenge(http: httpx.Client) -> None:
    response = http.get("/invoices")
    assert_problem(response, 401, "urn:hopauth:problem:missing-token")
    assert response.headers["www-authenticate"] == 'Bearer realm="billing"'


def test_a_direct_user_token_is_refused(http: httpx.Client, auth: httpx.Client) -> None:
    # alice's own login token (aud=gateway, billing:read) sent straight to billing, no gateway.
    user_token = login(auth, "alice").access_token
    assert claims(user_token)["aud"] == "gateway"
    assert "billing:read" in claims(user_token)["scope"].split()
    response = http.get("/invoices", headers=bearer(user_token))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="billing", error="invalid_token"')
    assert "audience" in challenge


def test_a_token_exchanged_for_another_service_is_refused(
    http: httpx.Client, auth: httpx.Client
) -> None:
    user_token = login(auth, "alice").access_token
    at_order = exchange(auth, "gateway", user_token, "order", "orders:read")
    assert at_order.status_code == 200, at_order.text
    response = http.get("/invoices", headers=bearer(at_order.json()["access_token"]))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")


def test_service_tokens_for_billing_cannot_read_invoices(
    http: httpx.Client, auth: httpx.Client, auth_server: ServerThread
) -> None:
    # order's own client-credentials token for billing (payments:verify) lacks billing:read ...
    verify = client_credentials(auth, "order", "billing", "payments:verify")
    assert verify.status_code == 200, verify.text
    response = http.get("/invoices", headers=bearer(verify.json()["access_token"]))
    assert_problem(response, 403, "urn:hopauth:problem:insufficient-scope")
    assert 'scope="billing:read"' in response.headers["www-authenticate"]
    # ... the billing worker gets no billing token at all ...
    assert client_credentials(auth, "billing-worker", "billing", "billing:read").status_code == 400
    # ... and a genuine billing:read token presented by anyone but the gateway is refused.
    minted = mint(
        auth_server,
        audience="billing",
        client_id="order",
        subject="alice",
        scopes=["billing:read"],
        act={"sub": "order", "act": {"sub": "gateway"}},
    )
    assert_problem(
        http.get("/invoices", headers=bearer(minted)), 403, "urn:hopauth:problem:forbidden-caller"
    )


def test_a_logged_out_session_cannot_read_invoices(http: httpx.Client, auth: httpx.Client) -> None:
    session = login(auth, "bob")
    token = exchange(auth, "gateway", session.access_token, "billing", "billing:read")
    token_value = token.json()["access_token"]
    assert http.get("/invoices", headers=bearer(token_value)).status_code == 200
    logout = auth.post("/revoke", data={"token": session.refresh_token, "client_id": "web"})
    assert logout.status_code == 200, logout.text
    response = http.get("/invoices", headers=bearer(token_value))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert "session revoked" in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer a b", "Bearer " + "x" * 10000, "Bearer e30.e30.sig", "Basic Zm9v"]
)
def test_malformed_bearer_tokens_are_401(http: httpx.Client, header: str) -> None:
    response = http.get("/invoices", headers={"Authorization": header})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith('Bearer realm="billing"')


def test_unknown_routes_and_methods_are_problems(http: httpx.Client) -> None:
    assert_problem(http.get("/nope"), 404)
    assert_problem(http.post("/invoices"), 405)
