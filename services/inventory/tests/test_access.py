"""Only the order service reaches reservations, with a token made for this hop."""

from __future__ import annotations

import httpx
import pytest
from auth_testing import claims, client_credentials, exchange, login, mint, service_token
from hopkit.testing import ServerThread
from inventory_testing import (
    add_product,
    assert_problem,
    available,
    bearer,
    reservation,
)


@pytest.fixture(scope="module")
def product(database_url: str) -> int:
    return add_product(database_url, 10)


def test_the_reserve_token_is_the_user_delegated_through_order(reserver: str) -> None:
    token = claims(reserver)
    assert token["aud"] == "inventory"
    assert token["scope"] == "inventory:reserve"
    assert token["client_id"] == "order"
    assert token["act"] == {"sub": "order", "act": {"sub": "gateway"}}


def test_no_token_gets_a_bare_challenge(http: httpx.Client, product: int) -> None:
    response = http.post("/reservations", json=reservation("acc-0", (product, 1)))
    assert_problem(response, 401, "urn:hopauth:problem:missing-token")
    assert response.headers["www-authenticate"] == 'Bearer realm="inventory"'


def test_the_users_own_token_is_refused(
    http: httpx.Client, auth: httpx.Client, product: int
) -> None:
    user_token = login(auth, "bob").access_token
    response = http.post(
        "/reservations", json=reservation("acc-1", (product, 1)), headers=bearer(user_token)
    )
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="inventory", error="invalid_token"')
    assert "audience" in challenge
    assert available(http, product) == 10


def test_the_gateway_cannot_get_an_inventory_token_nor_use_its_order_token(
    http: httpx.Client, auth: httpx.Client, product: int
) -> None:
    user_token = login(auth, "bob").access_token
    # The issuer refuses the hop gateway -> inventory outright ...
    refused = exchange(auth, "gateway", user_token, "inventory", "inventory:reserve")
    assert refused.status_code == 400, refused.text
    assert "access_token" not in refused.json()
    # ... and gateway's token for order is no good here.
    at_order = exchange(auth, "gateway", user_token, "order", "orders:write").json()["access_token"]
    response = http.post(
        "/reservations", json=reservation("acc-2", (product, 1)), headers=bearer(at_order)
    )
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")


def test_a_genuine_inventory_token_presented_by_the_gateway_is_refused(
    http: httpx.Client, auth_server: ServerThread, product: int
) -> None:
    # The policy never issues this; the caller check stops it anyway (defence in depth).
    token = mint(
        auth_server,
        audience="inventory",
        client_id="gateway",
        subject="alice",
        scopes=["inventory:reserve"],
        act={"sub": "gateway"},
    )
    response = http.post(
        "/reservations", json=reservation("acc-3", (product, 1)), headers=bearer(token)
    )
    assert_problem(response, 403, "urn:hopauth:problem:forbidden-caller")
    assert available(http, product) == 10


def test_billing_worker_client_credentials_are_refused(
    http: httpx.Client, auth: httpx.Client, auth_server: ServerThread, product: int
) -> None:
    # It cannot get a token for inventory at all ...
    assert (
        client_credentials(auth, "billing-worker", "inventory", "inventory:release").status_code
        == 400
    )
    # ... its token for order is for order ...
    for_order = service_token(auth, "billing-worker", "order", "orders:read")
    response = http.post("/reservations/acc-x/release", headers=bearer(for_order))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    # ... and even a genuine inventory token would name the wrong caller.
    minted = mint(
        auth_server,
        audience="inventory",
        client_id="billing-worker",
        subject="billing-worker",
        scopes=["inventory:release", "inventory:reserve"],
    )
    for path in ("/reservations/acc-x/release", "/reservations/acc-x/commit"):
        assert_problem(
            http.post(path, headers=bearer(minted)), 403, "urn:hopauth:problem:forbidden-caller"
        )
    response = http.post(
        "/reservations", json=reservation("acc-4", (product, 1)), headers=bearer(minted)
    )
    assert_problem(response, 403, "urn:hopauth:problem:forbidden-caller")


def test_release_scope_does_not_reserve(
    http: httpx.Client, order_service: str, product: int
) -> None:
    response = http.post(
        "/reservations", json=reservation("acc-5", (product, 1)), headers=bearer(order_service)
    )
    assert_problem(response, 403, "urn:hopauth:problem:insufficient-scope")
    assert response.headers["www-authenticate"] == (
        'Bearer realm="inventory", error="insufficient_scope", scope="inventory:reserve"'
    )


def test_reserve_scope_does_not_release(http: httpx.Client, reserver: str) -> None:
    response = http.post("/reservations/acc-6/release", headers=bearer(reserver))
    assert_problem(response, 403, "urn:hopauth:problem:insufficient-scope")


def test_the_scheduler_may_release_but_not_commit(http: httpx.Client, scheduler: str) -> None:
    response = http.post("/reservations/acc-7/commit", headers=bearer(scheduler))
    assert_problem(response, 403, "urn:hopauth:problem:forbidden-caller")


def test_a_logged_out_session_cannot_reserve(
    http: httpx.Client, auth: httpx.Client, product: int
) -> None:
    session = login(auth, "bob")
    at_order = exchange(auth, "gateway", session.access_token, "order", "orders:write")
    token = exchange(
        auth, "order", at_order.json()["access_token"], "inventory", "inventory:reserve"
    ).json()["access_token"]
    # bob logs out: the auth service marks the session revoked in valkey.
    logout = auth.post("/revoke", data={"token": session.refresh_token, "client_id": "web"})
    assert logout.status_code == 200, logout.text
    response = http.post(
        "/reservations", json=reservation("acc-8", (product, 1)), headers=bearer(token)
    )
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert "session revoked" in response.headers["www-authenticate"]
    assert available(http, product) == 10
