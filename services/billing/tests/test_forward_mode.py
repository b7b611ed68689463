"""Forward mode (the vulnerable teaching mode): billing takes a customer's own token.

A forward-mode billing API runs next to the session's exchange-mode one; each
attack that succeeds on the first is tried on the second, where it fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from auth_testing import bad_token, login, mint
from billing_service.app import create_app
from billing_testing import add_invoice, assert_problem, bearer, make_settings, subject_of
from hopkit.testing import ServerThread, ValkeyServer

MODE = "x-hopshop-mode"


@pytest.fixture(scope="module")
def forward_server(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    settings = make_settings(
        tmp_path_factory.mktemp("billing-forward"),
        issuer,
        redis_url=valkey.url,
        propagation="forward",
    )
    assert not settings.runs_worker
    with ServerThread(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def forward(forward_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=forward_server.base_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def alice_login(auth: httpx.Client) -> str:
    """alice's own login token: aud=gateway, client web, billing:read, no act."""
    return login(auth, "alice").access_token


def test_the_customers_gateway_token_reads_their_invoices(
    forward: httpx.Client, forward_server: ServerThread, alice_login: str
) -> None:
    invoice = add_invoice(forward_server.app.state.settings.database_url, subject_of(alice_login))
    response = forward.get("/invoices", headers=bearer(alice_login))
    assert response.status_code == 200, response.text
    assert response.headers[MODE] == "vulnerable-forwarding"
    assert [i["id"] for i in response.json()] == [invoice.id]


def test_the_same_token_is_refused_in_exchange_mode(http: httpx.Client, alice_login: str) -> None:
    response = http.get("/invoices", headers=bearer(alice_login))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert "audience" in response.headers["www-authenticate"]
    assert "x-hopshop-mode" not in response.headers


def test_the_users_own_scope_is_still_needed(
    forward: httpx.Client, auth_server: ServerThread
) -> None:
    token = mint(auth_server, audience="gateway", client_id="web", scopes=["orders:read"])
    assert_problem(
        forward.get("/invoices", headers=bearer(token)),
        403,
        "urn:hopauth:problem:insufficient-scope",
    )


@pytest.mark.parametrize("kind", ["forged", "expired"])
def test_bad_tokens_are_still_refused(
    forward: httpx.Client, auth_server: ServerThread, alice_login: str, kind: str
) -> None:
    token = bad_token(kind, auth_server, alice_login, "billing:read")
    response = forward.get("/invoices", headers=bearer(token))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert response.headers[MODE] == "vulnerable-forwarding"


def test_the_payment_record_keeps_its_scope_but_not_its_caller_check(
    forward: httpx.Client,
    http: httpx.Client,
    forward_server: ServerThread,
    auth_server: ServerThread,
    alice_login: str,
) -> None:
    invoice = add_invoice(forward_server.app.state.settings.database_url, "someone")
    path = f"/internal/orders/{invoice.order_id}/payment"
    # The customer's forwarded token has no payments:verify: still refused.
    refused = forward.get(path, headers=bearer(alice_login))
    assert_problem(refused, 403, "urn:hopauth:problem:insufficient-scope")
    # A payments:verify token of a service that should not ask now reads it ...
    other = mint(
        auth_server,
        audience="billing",
        client_id="billing-worker",
        subject="billing-worker",
        scopes=["payments:verify"],
    )
    response = forward.get(path, headers=bearer(other))
    assert response.status_code == 200, response.text
    assert response.json()["invoice_id"] == invoice.id
    # ... which exchange mode refuses: it is not order's or the notification worker's.
    assert_problem(
        http.get(path, headers=bearer(other)), 403, "urn:hopauth:problem:forbidden-caller"
    )
