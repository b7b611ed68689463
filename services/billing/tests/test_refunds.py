"""POST /internal/orders/{id}/refund: a payment given back when its order was cancelled first.

Only order calls it, with its own client-credentials token (``payments:refund``,
aud ``billing``), once billing has vouched for a ``payment.succeeded`` whose order
it finds CANCELLED. The provider refunds the whole payment, the invoice becomes
REFUNDED, and asking again answers the same without refunding twice.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from auth_testing import client_credentials, mint, service_token
from billing_service.provider import Refund
from billing_testing import add_invoice, assert_problem, bearer, invoice_token, subject_of
from hopkit.testing import ServerThread


@pytest.fixture(scope="module")
def order_refunds(auth: httpx.Client) -> str:
    return service_token(auth, "order", "billing", "payments:refund")


@pytest.fixture(scope="module")
def alice(auth: httpx.Client) -> str:
    return invoice_token(auth, "alice")


def refund_url(order_id: str) -> str:
    return f"/internal/orders/{order_id}/refund"


def refunds_of(api_server: ServerThread, order_id: str) -> list[Refund]:
    made: list[Refund] = api_server.app.state.provider.refunds
    return [refund for refund in made if refund.idempotency_key == order_id]


def test_a_paid_invoice_is_refunded_and_the_customer_sees_it(
    http: httpx.Client,
    api_server: ServerThread,
    api_database_url: str,
    order_refunds: str,
    alice: str,
) -> None:
    paid = add_invoice(api_database_url, subject_of(alice), amount_cents=2580)
    response = http.post(refund_url(paid.order_id), headers=bearer(order_refunds))
    assert response.status_code == 200, response.text
    [refund] = refunds_of(api_server, paid.order_id)
    assert (refund.amount_cents, refund.currency) == (2580, "EUR")
    assert refund.charge_reference == paid.provider_reference
    assert response.json() == {
        "order_id": paid.order_id,
        "invoice_id": paid.id,
        "status": "REFUNDED",
        "amount_cents": 2580,
        "currency": "EUR",
        "refund_reference": refund.reference,
    }
    # The customer's invoice list says so.
    invoices = http.get("/invoices", headers=bearer(alice))
    assert invoices.status_code == 200, invoices.text
    [mine] = [invoice for invoice in invoices.json() if invoice["id"] == paid.id]
    assert mine["status"] == "REFUNDED"


def test_a_second_refund_answers_the_same_and_refunds_nothing_more(
    http: httpx.Client, api_server: ServerThread, api_database_url: str, order_refunds: str
) -> None:
    paid = add_invoice(api_database_url, "someone")
    first = http.post(refund_url(paid.order_id), headers=bearer(order_refunds))
    again = http.post(refund_url(paid.order_id), headers=bearer(order_refunds))
    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert again.json() == first.json()
    assert len(refunds_of(api_server, paid.order_id)) == 1


def test_a_refunded_payment_still_verifies_as_succeeded(
    http: httpx.Client, auth: httpx.Client, api_database_url: str, order_refunds: str
) -> None:
    # It happened (billing emitted payment.succeeded), then was given back: a redelivered
    # event is still confirmed, and order's refund call then answers the same.
    paid = add_invoice(api_database_url, "someone")
    refunded = http.post(refund_url(paid.order_id), headers=bearer(order_refunds))
    assert refunded.status_code == 200, refunded.text
    verify = service_token(auth, "order", "billing", "payments:verify")
    response = http.get(f"/internal/orders/{paid.order_id}/payment", headers=bearer(verify))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded"


def test_a_declined_invoice_is_409_not_refundable(
    http: httpx.Client, api_server: ServerThread, api_database_url: str, order_refunds: str
) -> None:
    declined = add_invoice(api_database_url, "someone", status="DECLINED")
    response = http.post(refund_url(declined.order_id), headers=bearer(order_refunds))
    body = assert_problem(response, 409, "payment-not-refundable")
    assert (body["order_id"], body["invoice_status"]) == (declined.order_id, "DECLINED")
    assert refunds_of(api_server, declined.order_id) == []


def test_an_order_billing_never_charged_is_404_payment_not_found(
    http: httpx.Client, order_refunds: str
) -> None:
    order_id = f"ord_{uuid.uuid4().hex}"
    body = assert_problem(
        http.post(refund_url(order_id), headers=bearer(order_refunds)), 404, "payment-not-found"
    )
    assert body["order_id"] == order_id


def test_an_id_that_is_no_order_id_is_422(http: httpx.Client, order_refunds: str) -> None:
    assert_problem(http.post(refund_url("a b"), headers=bearer(order_refunds)), 422)


def test_no_token_is_401(http: httpx.Client) -> None:
    response = http.post(refund_url("ord_1"))
    assert_problem(response, 401, "urn:hopauth:problem:missing-token")


def test_only_order_may_refund(
    http: httpx.Client,
    auth: httpx.Client,
    auth_server: ServerThread,
    api_server: ServerThread,
    api_database_url: str,
    alice: str,
) -> None:
    paid = add_invoice(api_database_url, "someone")
    url = refund_url(paid.order_id)
    # A customer's invoice token, and order's own verify-only token, lack the scope.
    for token in (alice, service_token(auth, "order", "billing", "payments:verify")):
        response = http.post(url, headers=bearer(token))
        assert_problem(response, 403, "urn:hopauth:problem:insufficient-scope")
        assert 'scope="payments:refund"' in response.headers["www-authenticate"]
    # The policy gives payments:refund to nobody else, the notification worker included ...
    for client_id in ("notification-worker", "gateway", "billing-worker", "order-scheduler"):
        refused = client_credentials(auth, client_id, "billing", "payments:refund")
        assert refused.status_code == 400, (client_id, refused.text)
    # ... and a genuine payments:refund token in another caller's hands is refused.
    for caller in ("notification-worker", "billing-worker"):
        minted = mint(
            auth_server,
            audience="billing",
            client_id=caller,
            subject=caller,
            scopes=["payments:refund"],
        )
        response = http.post(url, headers=bearer(minted))
        assert_problem(response, 403, "urn:hopauth:problem:forbidden-caller")
    assert refunds_of(api_server, paid.order_id) == []
    # Nothing changed: order itself can still refund it.
    assert (
        http.post(
            url, headers=bearer(service_token(auth, "order", "billing", "payments:refund"))
        ).status_code
        == 200
    )
