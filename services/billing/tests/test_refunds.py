"""POST /internal/orders/{id}/refund: a payment given back when its order was cancelled first.

Only order calls it, with its own client-credentials token (``payments:refund``,
aud ``billing``), once billing has vouched for a ``payment.succeeded`` whose order
it finds CANCELLED. The provider refunds the whole payment, the invoice becomes
REFUNDED, and asking again answers the same without refunding twice. The
change to REFUNDED writes one ``payment.refunded`` event to the outbox in the
same transaction (the customer hears of it); asking again writes none.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import httpx
import pytest
from auth_testing import client_credentials, mint, service_token
from billing_service.provider import Refund
from billing_testing import (
    add_invoice,
    assert_problem,
    bearer,
    events_for,
    eventually,
    invoice_token,
    invoices_for,
    outbox_rows,
    run_async,
    subject_of,
)
from hopkit.events import PAYMENT_REFUNDED, Envelope
from hopkit.testing import KafkaBroker, ServerThread


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


def events_written(database_url: str, order_id: str) -> list[dict[str, Any]]:
    """The outbox rows billing wrote about the order (unpublished here: no relay runs)."""
    return run_async(lambda: outbox_rows(database_url, order_id))


def invoice_status(database_url: str, order_id: str) -> str:
    [invoice] = run_async(lambda: invoices_for(database_url, order_id))
    return invoice.status


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
    assert response.json()["refunded"] is True  # what a payment.refunded is checked against


def test_a_declined_invoice_is_409_not_refundable(
    http: httpx.Client, api_server: ServerThread, api_database_url: str, order_refunds: str
) -> None:
    declined = add_invoice(api_database_url, "someone", status="DECLINED")
    response = http.post(refund_url(declined.order_id), headers=bearer(order_refunds))
    body = assert_problem(response, 409, "payment-not-refundable")
    assert (body["order_id"], body["invoice_status"]) == (declined.order_id, "DECLINED")
    assert refunds_of(api_server, declined.order_id) == []
    assert events_written(api_database_url, declined.order_id) == []


def test_a_refund_writes_one_payment_refunded_and_a_repeat_writes_none(
    http: httpx.Client, api_server: ServerThread, api_database_url: str, order_refunds: str
) -> None:
    paid = add_invoice(api_database_url, "customer-7", amount_cents=2580)
    assert events_written(api_database_url, paid.order_id) == []
    first = http.post(refund_url(paid.order_id), headers=bearer(order_refunds))
    assert first.status_code == 200, first.text
    [row] = events_written(api_database_url, paid.order_id)
    assert (row["topic"], row["key"], row["published_at"]) == (
        PAYMENT_REFUNDED,
        paid.order_id,
        None,
    )
    event = Envelope.parse(row["payload"].encode())  # poison (token-shaped data) would raise
    assert event.event_id == row["event_id"]
    assert (event.type, event.producer, event.subject) == (
        PAYMENT_REFUNDED,
        "billing",
        "customer-7",
    )
    assert event.data == {
        "order_id": paid.order_id,
        "invoice_id": paid.id,
        "amount_cents": 2580,
        "currency": "EUR",
    }
    # Idempotent calls (order's retry, a redelivered payment): the same answer, no new event.
    for _ in range(2):
        again = http.post(refund_url(paid.order_id), headers=bearer(order_refunds))
        assert again.json() == first.json()
    assert [r["event_id"] for r in events_written(api_database_url, paid.order_id)] == [
        row["event_id"]
    ]


def test_a_refund_whose_event_cannot_be_written_is_not_recorded(
    http: httpx.Client, api_server: ServerThread, api_database_url: str, order_refunds: str
) -> None:
    # The outbox refuses this order's row: the REFUNDED mark in the same transaction rolls
    # back with it, so billing never holds a refund the customer is not told about.
    paid = add_invoice(api_database_url, "someone")
    trigger = f"refuse_{uuid.uuid4().hex}"
    path = api_database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        connection.execute(
            f"CREATE TRIGGER {trigger} BEFORE INSERT ON outbox "
            f"WHEN NEW.key = '{paid.order_id}' BEGIN SELECT RAISE(ABORT, 'down'); END"
        )
    try:
        refused = http.post(refund_url(paid.order_id), headers=bearer(order_refunds))
        assert_problem(refused, 500)
        assert invoice_status(api_database_url, paid.order_id) == "PAID"
        assert events_written(api_database_url, paid.order_id) == []
    finally:
        with sqlite3.connect(path) as connection:
            connection.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    # Order retries; now the refund and its one event are recorded together.
    retried = http.post(refund_url(paid.order_id), headers=bearer(order_refunds))
    assert retried.status_code == 200, retried.text
    assert invoice_status(api_database_url, paid.order_id) == "REFUNDED"
    assert [r["topic"] for r in events_written(api_database_url, paid.order_id)] == [
        PAYMENT_REFUNDED
    ]
    assert len(refunds_of(api_server, paid.order_id)) == 1  # the provider's refund is idempotent


async def test_the_relay_publishes_the_refund_to_kafka(
    billing: httpx.Client, billing_database_url: str, kafka: KafkaBroker, auth: httpx.Client
) -> None:
    # Billing with its worker (and so its outbox relay) running, as in the stack.
    paid = add_invoice(billing_database_url, "customer-8", amount_cents=990)
    token = service_token(auth, "order", "billing", "payments:refund")
    for _ in range(2):
        response = billing.post(refund_url(paid.order_id), headers=bearer(token))
        assert response.status_code == 200, response.text

    async def published() -> bool:
        return bool(await events_for(kafka.bootstrap, PAYMENT_REFUNDED, paid.order_id))

    await eventually(published, what="payment.refunded on Kafka")
    [event] = await events_for(kafka.bootstrap, PAYMENT_REFUNDED, paid.order_id)
    assert (event.subject, event.data["invoice_id"], event.data["amount_cents"]) == (
        "customer-8",
        paid.id,
        990,
    )
    [row] = await outbox_rows(billing_database_url, paid.order_id)
    assert row["published_at"] is not None


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
