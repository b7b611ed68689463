"""Who may read which order: the workers' internal reads (billing the whole order, notification
its status); support staff acting for a customer."""

from __future__ import annotations

import logging

import httpx
import pytest
from auth_testing import (
    ACCESS_TOKEN_TYPE,
    EXCHANGE,
    claims,
    client_credentials,
    exchange,
    login,
    mint,
    secret,
    service_token,
)
from hopkit.testing import ServerThread
from inventory_testing import add_product
from order_testing import (
    assert_problem,
    bearer,
    order_body,
    order_token,
    wait_for,
)


@pytest.fixture(scope="module")
def alices_order(http: httpx.Client, inventory_db: str, alice: str) -> dict[str, object]:
    product = add_product(inventory_db, 5, price_cents=700)
    response = http.post("/orders", json=order_body((product, 3)), headers=bearer(alice))
    assert response.status_code == 201, response.text
    order: dict[str, object] = response.json()
    return order


def test_the_billing_worker_reads_the_authoritative_order(
    http: httpx.Client, alices_order: dict[str, object], billing_worker: str
) -> None:
    assert claims(billing_worker)["sub"] == "billing-worker"
    response = http.get(f"/internal/orders/{alices_order['id']}", headers=bearer(billing_worker))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == alices_order
    assert (body["total_cents"], body["currency"]) == (2100, "EUR")
    assert body["card"] == {"masked": "424242******4242"}
    assert_problem(
        http.get("/internal/orders/ord_missing", headers=bearer(billing_worker)),
        404,
        "order-not-found",
    )


@pytest.fixture(scope="module")
def notifier(auth: httpx.Client) -> str:
    """notification-worker's client-credentials token for order: orders:status, nothing more."""
    token = service_token(auth, "notification-worker", "order", "orders:status")
    assert (claims(token)["sub"], claims(token)["scope"]) == (
        "notification-worker",
        "orders:status",
    )
    return token


def test_the_notification_worker_reads_only_the_status_view(
    http: httpx.Client, auth: httpx.Client, alices_order: dict[str, object], notifier: str
) -> None:
    response = http.get(f"/internal/orders/{alices_order['id']}/status", headers=bearer(notifier))
    assert response.status_code == 200, response.text
    # Exactly what it checks an order event against: no amount, items or card.
    assert response.json() == {
        "id": alices_order["id"],
        "customer_id": alices_order["customer_id"],
        "status": "PENDING_PAYMENT",
        "reason": None,
    }
    # The expiry job's client gets no token for order at all.
    assert client_credentials(auth, "order-scheduler", "order", "orders:read").status_code == 400


def test_the_status_view_names_why_an_order_was_cancelled(
    http: httpx.Client, inventory_db: str, alice: str, notifier: str
) -> None:
    product = add_product(inventory_db, 2)
    placed = http.post("/orders", json=order_body((product, 1)), headers=bearer(alice))
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    cancelled = http.post(f"/orders/{order_id}/cancel", headers=bearer(alice))
    assert cancelled.status_code == 200, cancelled.text
    response = http.get(f"/internal/orders/{order_id}/status", headers=bearer(notifier))
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["reason"]) == ("CANCELLED", "customer")


def test_the_status_view_404s_an_unknown_order_and_422s_a_malformed_id(
    http: httpx.Client, notifier: str
) -> None:
    assert_problem(
        http.get("/internal/orders/ord_missing/status", headers=bearer(notifier)),
        404,
        "order-not-found",
    )
    for bad in ("-starts-with-a-dash", "x" * 65, "spa%20ce"):
        problem = assert_problem(
            http.get(f"/internal/orders/{bad}/status", headers=bearer(notifier)), 422
        )
        assert "order_id" in str(problem), problem


def test_the_notification_worker_no_longer_reads_the_full_order(
    http: httpx.Client, alices_order: dict[str, object], notifier: str
) -> None:
    response = http.get(f"/internal/orders/{alices_order['id']}", headers=bearer(notifier))
    assert_problem(response, 403, "urn:hopauth:problem:insufficient-scope")
    assert "orders:read" in response.headers["www-authenticate"]
    assert "total_cents" not in response.text and "masked" not in response.text


def test_the_status_view_refuses_everyone_but_the_notification_worker(
    http: httpx.Client,
    auth: httpx.Client,
    alices_order: dict[str, object],
    alice: str,
    billing_worker: str,
) -> None:
    path = f"/internal/orders/{alices_order['id']}/status"
    # billing's worker reads the full order, but holds no orders:status.
    refused = http.get(path, headers=bearer(billing_worker))
    assert_problem(refused, 403, "urn:hopauth:problem:insufficient-scope")
    assert "orders:status" in refused.headers["www-authenticate"]
    # A customer's token (through the gateway) has no orders:status either ...
    assert_problem(
        http.get(path, headers=bearer(alice)), 403, "urn:hopauth:problem:insufficient-scope"
    )
    # ... and the gateway cannot get it for her: no exchange grants it.
    user = login(auth, "alice").access_token
    denied = exchange(auth, "gateway", user, "order", "orders:status")
    assert denied.status_code == 400, denied.text
    assert denied.json()["error"] == "invalid_scope"
    # The worker's token for another audience is not for order at all.
    elsewhere = service_token(auth, "notification-worker", "auth", "users:read")
    assert_problem(
        http.get(path, headers=bearer(elsewhere)), 401, "urn:hopauth:problem:invalid-token"
    )
    assert_problem(http.get(path), 401, "urn:hopauth:problem:missing-token")


def test_the_internal_read_refuses_the_gateway_and_other_services(
    http: httpx.Client, auth: httpx.Client, alices_order: dict[str, object], alice: str
) -> None:
    path = f"/internal/orders/{alices_order['id']}"
    # alice's gateway-exchanged token holds orders:read, but the caller is the gateway.
    assert_problem(
        http.get(path, headers=bearer(alice)), 403, "urn:hopauth:problem:forbidden-caller"
    )
    # A token of another service, for another audience, is not for us at all.
    notifier = service_token(auth, "notification-worker", "auth", "users:read")
    assert_problem(
        http.get(path, headers=bearer(notifier)), 401, "urn:hopauth:problem:invalid-token"
    )
    assert_problem(http.get(path), 401, "urn:hopauth:problem:missing-token")


def test_the_status_view_checks_its_caller_not_only_the_scope(
    http: httpx.Client, auth_server: ServerThread, alices_order: dict[str, object]
) -> None:
    # No flow gives another client orders:status, so the issuer's own key mints one: were
    # the policy ever to grant it elsewhere, the route would still take only the worker.
    stray = mint(
        auth_server,
        subject="billing-worker",
        client_id="billing-worker",
        audience="order",
        scopes=["orders:status"],
    )
    response = http.get(f"/internal/orders/{alices_order['id']}/status", headers=bearer(stray))
    assert_problem(response, 403, "urn:hopauth:problem:forbidden-caller")


def test_support_learns_only_who_owns_an_order_and_the_lookup_is_logged(
    http: httpx.Client,
    auth: httpx.Client,
    alices_order: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    carol = order_token(auth, "carol", "support:read")
    assert claims(carol)["scope"] == "support:read"
    path = f"/support/orders/{alices_order['id']}/owner"
    with caplog.at_level(logging.INFO):
        response = http.get(path, headers=bearer(carol))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "order_id": alices_order["id"],
        "customer_id": alices_order["customer_id"],
    }

    [line] = logged(caplog, "support-owner-lookup")
    assert line.sub == claims(carol)["sub"]  # type: ignore[attr-defined]
    assert line.act == ["gateway"]  # type: ignore[attr-defined]
    assert line.order_id == alices_order["id"]  # type: ignore[attr-defined]
    assert line.customer_id == alices_order["customer_id"]  # type: ignore[attr-defined]
    assert line.jti == claims(carol)["jti"]  # type: ignore[attr-defined]
    assert carol not in caplog.text

    assert_problem(
        http.get("/support/orders/ord_missing/owner", headers=bearer(carol)),
        404,
        "order-not-found",
    )
    # carol's support token opens no order itself: not hers to read, not as herself.
    assert_problem(http.get(f"/orders/{alices_order['id']}", headers=bearer(carol)), 403)
    assert_problem(http.get("/orders", headers=bearer(carol)), 403)
    # The old full view for support staff is gone.
    assert (
        http.get(f"/support/orders/{alices_order['id']}", headers=bearer(carol)).status_code == 404
    )


def logged(caplog: pytest.LogCaptureFixture, action: str) -> list[logging.LogRecord]:
    """The request lines with ``action``; a line is written just after the answer, so wait."""

    def lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if getattr(r, "action", None) == action]

    wait_for(lines, timeout=5, what=f"the {action} log line")
    return lines()


def delegated(auth: httpx.Client, actor: str, customer_id: str) -> str:
    """What the gateway gets for support access: the customer as sub, the staff member in act."""
    response = auth.post(
        "/token",
        data={
            "grant_type": EXCHANGE,
            "actor_token": actor,
            "actor_token_type": ACCESS_TOKEN_TYPE,
            "requested_subject": customer_id,
            "audience": "order",
            "scope": "orders:read",
        },
        auth=secret("gateway"),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def test_support_reads_the_order_as_the_customer_and_both_are_logged(
    http: httpx.Client,
    auth: httpx.Client,
    alices_order: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    carol = login(auth, "carol").access_token
    carol_id = claims(carol)["sub"]
    token = delegated(auth, carol, str(alices_order["customer_id"]))
    with caplog.at_level(logging.INFO):
        response = http.get(f"/orders/{alices_order['id']}", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json() == alices_order

    [line] = logged(caplog, "support-view")
    assert line.customer == alices_order["customer_id"]  # type: ignore[attr-defined]
    assert line.acted_by == carol_id  # type: ignore[attr-defined]
    assert line.act == ["gateway", carol_id]  # type: ignore[attr-defined]
    assert line.order_id == alices_order["id"]  # type: ignore[attr-defined]
    assert line.jti == claims(token)["jti"]  # type: ignore[attr-defined]
    assert token not in caplog.text and carol not in caplog.text

    # Read only: the delegated token cannot cancel the customer's order.
    assert_problem(
        http.post(f"/orders/{alices_order['id']}/cancel", headers=bearer(token)),
        403,
        "urn:hopauth:problem:insufficient-scope",
    )


def test_a_customers_own_reads_are_not_marked_as_support(
    http: httpx.Client,
    alices_order: dict[str, object],
    alice: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        assert http.get(f"/orders/{alices_order['id']}", headers=bearer(alice)).status_code == 200
    assert not [r for r in caplog.records if hasattr(r, "acted_by")]


def test_a_token_for_one_customer_opens_no_other_customers_order(
    http: httpx.Client, auth: httpx.Client, alices_order: dict[str, object], bob: str
) -> None:
    carol = login(auth, "carol").access_token
    for_bob = delegated(auth, carol, claims(bob)["sub"])
    assert_problem(
        http.get(f"/orders/{alices_order['id']}", headers=bearer(for_bob)), 404, "order-not-found"
    )


def test_ending_carols_login_ends_her_access_to_the_customers_order(
    http: httpx.Client, auth: httpx.Client, alices_order: dict[str, object]
) -> None:
    carol = login(auth, "carol")
    token = delegated(auth, carol.access_token, str(alices_order["customer_id"]))
    path = f"/orders/{alices_order['id']}"
    assert http.get(path, headers=bearer(token)).status_code == 200
    revoked = auth.post("/revoke", data={"token": carol.refresh_token, "client_id": "web"})
    assert revoked.is_success, revoked.text
    # The issuer's Redis marker for carol's sid reaches order at once.
    assert_problem(http.get(path, headers=bearer(token)), 401, "urn:hopauth:problem:invalid-token")


def test_a_customer_has_no_support_access(
    http: httpx.Client, auth: httpx.Client, alices_order: dict[str, object], bob: str
) -> None:
    path = f"/support/orders/{alices_order['id']}/owner"
    assert_problem(
        http.get(path, headers=bearer(bob)), 403, "urn:hopauth:problem:insufficient-scope"
    )
    # And alice cannot get a support:read token for order in the first place.
    user = login(auth, "alice").access_token
    refused = exchange(auth, "gateway", user, "order", "support:read orders:read")
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_scope"
