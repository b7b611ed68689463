"""GET /internal/orders/{id}/payment: billing's record, which payment events are checked against.

Order (before it confirms or cancels), its expiry job ``order-scheduler``
(before it confirms an overdue order whose stock was sold) and the
notification worker (before it tells a customer) ask with their own
client-credentials tokens (``payments:verify``, aud ``billing``); nobody else
gets an answer.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from auth_testing import client_credentials, mint, service_token
from billing_testing import (
    add_invoice,
    assert_problem,
    bearer,
    invoice_token,
    subject_of,
)
from hopkit.testing import ServerThread


def verify_token(auth: httpx.Client, client_id: str) -> str:
    return service_token(auth, client_id, "billing", "payments:verify")


@pytest.fixture(scope="module")
def order_verifies(auth: httpx.Client) -> str:
    return verify_token(auth, "order")


@pytest.fixture(scope="module")
def alice(auth: httpx.Client) -> str:
    return invoice_token(auth, "alice")


def payment_url(order_id: str) -> str:
    return f"/internal/orders/{order_id}/payment"


def test_order_reads_the_payment_billing_recorded(
    http: httpx.Client, api_database_url: str, order_verifies: str, alice: str
) -> None:
    paid = add_invoice(api_database_url, subject_of(alice), amount_cents=2580)
    response = http.get(payment_url(paid.order_id), headers=bearer(order_verifies))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "order_id": paid.order_id,
        "invoice_id": paid.id,
        "status": "succeeded",
        "amount_cents": 2580,
        "currency": "EUR",
        "customer_id": subject_of(alice),
        "reason": None,
        "refunded": False,
    }


def test_a_declined_payment_is_failed_with_the_providers_reason(
    http: httpx.Client, api_database_url: str, auth: httpx.Client, alice: str
) -> None:
    declined = add_invoice(api_database_url, subject_of(alice), status="DECLINED")
    # The notification worker asks too, with its own token.
    token = verify_token(auth, "notification-worker")
    response = http.get(payment_url(declined.order_id), headers=bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["invoice_id"], body["reason"]) == (
        "failed",
        declined.id,
        "card_declined",
    )


def test_an_order_billing_never_charged_is_404_payment_not_found(
    http: httpx.Client, order_verifies: str
) -> None:
    order_id = f"ord_{uuid.uuid4().hex}"
    body = assert_problem(
        http.get(payment_url(order_id), headers=bearer(order_verifies)), 404, "payment-not-found"
    )
    assert body["order_id"] == order_id


@pytest.mark.parametrize("order_id", ["a b", "-x", "o" * 65, "%2E%2E"])
def test_an_id_that_is_no_order_id_is_422(
    http: httpx.Client, order_verifies: str, order_id: str
) -> None:
    assert_problem(http.get(payment_url(order_id), headers=bearer(order_verifies)), 422)


def test_no_token_is_401(http: httpx.Client) -> None:
    response = http.get(payment_url("ord_1"))
    assert_problem(response, 401, "urn:hopauth:problem:missing-token")
    assert response.headers["www-authenticate"] == 'Bearer realm="billing"'


def test_a_customers_invoice_token_is_403_insufficient_scope(
    http: httpx.Client, api_database_url: str, alice: str
) -> None:
    # alice's own invoice token (through the gateway) cannot read what billing recorded.
    paid = add_invoice(api_database_url, subject_of(alice))
    response = http.get(payment_url(paid.order_id), headers=bearer(alice))
    assert_problem(response, 403, "urn:hopauth:problem:insufficient-scope")
    assert 'scope="payments:verify"' in response.headers["www-authenticate"]


def test_the_expiry_job_reads_the_payment_with_its_own_token(
    http: httpx.Client, auth: httpx.Client, api_database_url: str
) -> None:
    paid = add_invoice(api_database_url, "someone")
    token = verify_token(auth, "order-scheduler")
    response = http.get(payment_url(paid.order_id), headers=bearer(token))
    assert response.status_code == 200, response.text
    assert (response.json()["invoice_id"], response.json()["status"]) == (paid.id, "succeeded")


def test_only_order_its_expiry_job_and_the_notification_worker_may_verify(
    http: httpx.Client, auth: httpx.Client, auth_server: ServerThread, api_database_url: str
) -> None:
    paid = add_invoice(api_database_url, "someone")
    # The policy gives payments:verify to nobody else ...
    for client_id in ("gateway", "billing-worker"):
        refused = client_credentials(auth, client_id, "billing", "payments:verify")
        assert refused.status_code == 400, (client_id, refused.text)
    # ... and a genuine payments:verify token in another caller's hands is refused.
    for caller in ("billing-worker", "gateway"):
        minted = mint(
            auth_server,
            audience="billing",
            client_id=caller,
            subject=caller,
            scopes=["payments:verify"],
        )
        response = http.get(payment_url(paid.order_id), headers=bearer(minted))
        assert_problem(response, 403, "urn:hopauth:problem:forbidden-caller")
    # A token order holds for another audience is not one for billing.
    at_inventory = client_credentials(auth, "order", "inventory", "inventory:release")
    assert at_inventory.status_code == 200, at_inventory.text
    response = http.get(
        payment_url(paid.order_id), headers=bearer(at_inventory.json()["access_token"])
    )
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
