"""Who may read which order: billing's internal read, support's read of any order."""

from __future__ import annotations

import logging

import httpx
import pytest
from auth_testing import claims, exchange, login
from inventory_testing import add_product
from order_testing import assert_problem, bearer, order_body, order_token, service_token


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


def test_support_reads_any_order_and_the_access_is_logged_with_the_act_chain(
    http: httpx.Client,
    auth: httpx.Client,
    alices_order: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    carol = order_token(auth, "carol", "support:read")
    assert claims(carol)["scope"] == "support:read"
    path = f"/support/orders/{alices_order['id']}"
    with caplog.at_level(logging.INFO):
        response = http.get(path, headers=bearer(carol))
    assert response.status_code == 200, response.text
    assert response.json() == alices_order

    [line] = [r for r in caplog.records if getattr(r, "action", None) == "support-view"]
    assert line.sub == claims(carol)["sub"]  # type: ignore[attr-defined]
    assert line.act == ["gateway"]  # type: ignore[attr-defined]
    assert line.order_id == alices_order["id"]  # type: ignore[attr-defined]
    assert line.customer_id == alices_order["customer_id"]  # type: ignore[attr-defined]
    assert line.jti == claims(carol)["jti"]  # type: ignore[attr-defined]
    assert carol not in caplog.text

    # carol's support token is for reading, not for ordering as herself.
    assert_problem(http.get("/orders", headers=bearer(carol)), 403)


def test_a_customer_has_no_support_access(
    http: httpx.Client, auth: httpx.Client, alices_order: dict[str, object], bob: str
) -> None:
    path = f"/support/orders/{alices_order['id']}"
    assert_problem(
        http.get(path, headers=bearer(bob)), 403, "urn:hopauth:problem:insufficient-scope"
    )
    # And alice cannot get a support:read token for order in the first place.
    user = login(auth, "alice").access_token
    refused = exchange(auth, "gateway", user, "order", "support:read orders:read")
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_scope"
