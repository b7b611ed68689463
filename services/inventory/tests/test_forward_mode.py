"""Forward mode (the vulnerable teaching mode): inventory takes a user's token not made for it.

Each attack that succeeds here is paired with the same request against the
exchange-mode server, where it fails: the weakening is forward mode's alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from auth_testing import bad_token, login, mint
from hopkit.testing import ServerThread, ValkeyServer
from inventory_service.app import create_app
from inventory_testing import add_product, assert_problem, available, bearer, make_settings
from inventory_testing import reservation as reservation_body

MODE = "x-hopshop-mode"


@pytest.fixture(scope="module")
def forward_server(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    settings = make_settings(
        tmp_path_factory.mktemp("inventory-forward"),
        issuer,
        redis_url=valkey.url,
        propagation="forward",
    )
    with ServerThread(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def forward(forward_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=forward_server.base_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def forward_product(forward_server: ServerThread) -> int:
    return add_product(forward_server.app.state.settings.database_url, 10)


@pytest.fixture(scope="module")
def product(database_url: str) -> int:
    return add_product(database_url, 10)


@pytest.fixture(scope="module")
def user_token(auth: httpx.Client) -> str:
    """alice's own login token: aud=gateway, client web, orders:write, no act."""
    return login(auth, "alice").access_token


def test_a_users_gateway_token_reserves_stock(
    forward: httpx.Client, user_token: str, forward_product: int
) -> None:
    response = forward.post(
        "/reservations",
        json=reservation_body("fwd-1", (forward_product, 2)),
        headers=bearer(user_token),
    )
    assert response.status_code == 201, response.text
    assert response.headers[MODE] == "vulnerable-forwarding"


def test_the_same_token_is_refused_in_exchange_mode(
    http: httpx.Client, user_token: str, product: int
) -> None:
    response = http.post(
        "/reservations", json=reservation_body("fwd-2", (product, 2)), headers=bearer(user_token)
    )
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert "audience" in response.headers["www-authenticate"]
    assert MODE not in response.headers
    assert available(http, product) == 10


def test_the_users_own_scope_is_still_needed(
    forward: httpx.Client, auth_server: ServerThread, forward_product: int
) -> None:
    reader = mint(auth_server, audience="gateway", client_id="web", scopes=["orders:read"])
    response = forward.post(
        "/reservations",
        json=reservation_body("fwd-3", (forward_product, 1)),
        headers=bearer(reader),
    )
    assert_problem(response, 403, "urn:hopauth:problem:insufficient-scope")


def test_any_caller_with_the_scope_may_release(
    forward: httpx.Client,
    http: httpx.Client,
    auth_server: ServerThread,
    user_token: str,
    forward_product: int,
) -> None:
    reserved = forward.post(
        "/reservations",
        json=reservation_body("fwd-5", (forward_product, 1)),
        headers=bearer(user_token),
    )
    assert reserved.status_code == 201, reserved.text
    # Not a client the policy gives inventory:release to: only the scope is checked now.
    token = mint(
        auth_server,
        audience="inventory",
        client_id="billing-worker",
        subject="billing-worker",
        scopes=["inventory:release"],
    )
    before = available(forward, forward_product)
    released = forward.post("/reservations/fwd-5/release", headers=bearer(token))
    assert released.status_code == 200, released.text
    assert available(forward, forward_product) == before + 1
    refused = http.post("/reservations/fwd-5/release", headers=bearer(token))
    assert_problem(refused, 403, "urn:hopauth:problem:forbidden-caller")


@pytest.mark.parametrize("kind", ["forged", "expired", "junk"])
def test_bad_tokens_are_still_refused(
    forward: httpx.Client,
    auth_server: ServerThread,
    user_token: str,
    forward_product: int,
    kind: str,
) -> None:
    token = bad_token(kind, auth_server, user_token, "orders:write")
    response = forward.post(
        "/reservations", json=reservation_body("fwd-4", (forward_product, 1)), headers=bearer(token)
    )
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert response.headers[MODE] == "vulnerable-forwarding"
