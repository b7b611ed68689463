"""End to end through the real order service: a placed order is charged once, and only then.

The chain is the real one: alice logs in (code + PKCE), the gateway's exchanged
token places an order at the order service, which reserves stock at inventory
and stores the order and its order.placed event (outbox, relayed to the
broker). Billing's worker consumes it, fetches the order with its own
client-credentials token, charges, and emits the payment event through its
outbox.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest
from billing_service.app import create_app
from billing_testing import (
    DECLINED_CARD,
    bearer,
    end_offset,
    events_for,
    eventually,
    invoice_token,
    invoices_for,
    order_placed,
    place_order,
    processed,
    publish,
    records,
    settled,
    subject_of,
    worker_settings,
)
from hopkit.events import (
    ORDER_PLACED,
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
    Envelope,
    dlq,
)
from hopkit.logs import JsonFormatter
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    root = logging.getLogger()
    saved = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)


async def payment_events(bootstrap: str, order_id: str) -> list[Envelope]:
    return [
        *await events_for(bootstrap, PAYMENT_SUCCEEDED, order_id),
        *await events_for(bootstrap, PAYMENT_FAILED, order_id),
    ]


async def wait_for_payment(bootstrap: str, order_id: str) -> Envelope:
    async def announced() -> bool:
        return bool(await payment_events(bootstrap, order_id))

    await eventually(announced, 15, f"a payment event for {order_id}")
    [event] = await payment_events(bootstrap, order_id)
    return event


async def test_a_placed_order_is_charged_and_payment_succeeded_is_emitted(
    billing_server: ServerThread,
    billing_database_url: str,
    kafka: KafkaBroker,
    orders: httpx.Client,
    alice_orders: str,
    mug: int,
    logs: io.StringIO,
) -> None:
    order = place_order(
        orders,
        alice_orders,
        mug,
        2,
        headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
    )
    event = await wait_for_payment(kafka.bootstrap, order["id"])

    assert event.type == PAYMENT_SUCCEEDED
    assert event.producer == "billing"
    assert event.subject == order["customer_id"] == subject_of(alice_orders)
    [invoice] = await invoices_for(billing_database_url, order["id"])
    assert event.data == {
        "order_id": order["id"],
        "invoice_id": invoice.id,
        "amount_cents": order["total_cents"],
        "currency": order["currency"],
    }
    assert order["total_cents"] == 2 * 1290  # the catalogue's price, via the order service
    assert (invoice.status, invoice.amount_cents) == ("PAID", order["total_cents"])
    assert invoice.customer_id == order["customer_id"]

    [record] = [
        r
        for r in await records(kafka.bootstrap, PAYMENT_SUCCEEDED)
        if r.key == order["id"].encode()
    ]
    headers = {key: value.decode() for key, value in record.headers}
    # The request that placed the order is the trace the payment event continues.
    assert headers["traceparent"].split("-")[1] == TRACE_ID
    # No card, masked or not, in the event; no token either (hopkit refuses those).
    assert b"******" not in record.value
    assert b"card" not in record.value

    text = logs.getvalue()
    assert "******" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    handled = [
        line
        for line in lines
        if line.get("order_id") == order["id"] and line.get("settlement") == "paid"
    ]
    assert handled, "the worker's log line for the event"
    assert handled[0]["invoice_id"] == invoice.id
    assert handled[0]["trace_id"] == TRACE_ID


async def test_the_declined_test_card_gives_payment_failed(
    billing_server: ServerThread,
    billing_database_url: str,
    kafka: KafkaBroker,
    orders: httpx.Client,
    alice_orders: str,
    mug: int,
) -> None:
    order = place_order(orders, alice_orders, mug, card=DECLINED_CARD)
    assert order["card"] == {"masked": "400000******0002"}
    event = await wait_for_payment(kafka.bootstrap, order["id"])

    assert event.type == PAYMENT_FAILED
    [invoice] = await invoices_for(billing_database_url, order["id"])
    assert event.data == {
        "order_id": order["id"],
        "invoice_id": invoice.id,
        "amount_cents": order["total_cents"],
        "currency": "EUR",
        "reason": "card_declined",
    }
    assert (invoice.status, invoice.decline_reason) == ("DECLINED", "card_declined")
    assert await events_for(kafka.bootstrap, PAYMENT_SUCCEEDED, order["id"]) == []


async def test_the_same_order_placed_twice_charges_once(
    billing_server: ServerThread,
    billing_database_url: str,
    kafka: KafkaBroker,
    orders: httpx.Client,
    alice_orders: str,
    mug: int,
) -> None:
    order = place_order(orders, alice_orders, mug)
    first = await wait_for_payment(kafka.bootstrap, order["id"])
    [original] = [
        r for r in await records(kafka.bootstrap, ORDER_PLACED) if r.key == order["id"].encode()
    ]
    placed = Envelope.parse(original.value)

    # The very same record again (a relay that published twice, a replay) ...
    await publish(kafka.bootstrap, ORDER_PLACED, original.value, key=original.key)
    # ... and another event id for the same order (a duplicate, or a forgery).
    again = Envelope.new(ORDER_PLACED, "order", placed.subject, {"order_id": order["id"]})
    await publish(kafka.bootstrap, ORDER_PLACED, again.to_bytes(), key=original.key)
    await settled(kafka.bootstrap)

    # Nothing charged, so nothing recorded (hopkit.events.NoEffect).
    assert not await processed(billing_database_url, again.event_id)
    [invoice] = await invoices_for(billing_database_url, order["id"])
    assert invoice.event_id == placed.event_id
    assert await payment_events(kafka.bootstrap, order["id"]) == [first]
    assert await end_offset(kafka.bootstrap, dlq(ORDER_PLACED)) == 0


async def test_a_forged_order_placed_for_no_order_charges_nobody(
    billing_server: ServerThread,
    billing_database_url: str,
    kafka: KafkaBroker,
    alice_orders: str,
) -> None:
    # Everything but the order id is ignored: amount, card and customer come from order.
    order_id = f"ord_{uuid.uuid4().hex}"
    forged = order_placed(
        order_id, subject=subject_of(alice_orders), total_cents=1, card={"masked": "1"}
    )
    await publish(kafka.bootstrap, ORDER_PLACED, forged.to_bytes(), key=order_id.encode())
    await settled(kafka.bootstrap)

    # Handled (offset committed) but unrecorded: a genuine event with this id still counts.
    assert not await processed(billing_database_url, forged.event_id)
    assert await invoices_for(billing_database_url, order_id) == []
    assert await payment_events(kafka.bootstrap, order_id) == []
    assert await end_offset(kafka.bootstrap, dlq(ORDER_PLACED)) == 0


async def test_alice_sees_her_invoice_through_an_exchanged_token_and_bob_does_not(
    billing_server: ServerThread,
    billing: httpx.Client,
    auth: httpx.Client,
    kafka: KafkaBroker,
    orders: httpx.Client,
    alice_orders: str,
    mug: int,
) -> None:
    order = place_order(orders, alice_orders, mug)
    event = await wait_for_payment(kafka.bootstrap, order["id"])

    alice = billing.get("/invoices", headers=bearer(invoice_token(auth, "alice")))
    assert alice.status_code == 200, alice.text
    mine = [invoice for invoice in alice.json() if invoice["order_id"] == order["id"]]
    assert mine == [
        {
            "id": event.data["invoice_id"],
            "order_id": order["id"],
            "status": "PAID",
            "amount_cents": order["total_cents"],
            "currency": "EUR",
            "created_at": mine[0]["created_at"],
        }
    ]
    bob = billing.get("/invoices", headers=bearer(invoice_token(auth, "bob")))
    assert bob.status_code == 200, bob.text
    assert order["id"] not in {invoice["order_id"] for invoice in bob.json()}
    assert event.data["invoice_id"] not in {invoice["id"] for invoice in bob.json()}


# -- a world where billing alone decides: no relay, no payment consumer at the order service --


@pytest.fixture(scope="module")
def broker() -> Iterator[KafkaBroker]:
    with KafkaBroker() as broker:
        yield broker


@pytest.fixture(scope="module")
def solo(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: str,
    valkey: ValkeyServer,
    broker: KafkaBroker,
    still_orders: httpx.Client,
) -> Iterator[ServerThread]:
    """Billing on a broker of its own, asking the order service that keeps orders still."""
    settings = worker_settings(
        tmp_path_factory.mktemp("billing-solo"),
        issuer,
        broker.bootstrap,
        order_url=str(still_orders.base_url),
        redis_url=valkey.url,
    )
    with ServerThread(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def solo_database_url(solo: ServerThread) -> str:
    url: str = solo.app.state.settings.database_url
    return url


async def test_new_event_ids_for_a_still_pending_order_charge_it_once(
    solo_database_url: str,
    broker: KafkaBroker,
    still_orders: httpx.Client,
    alice_orders: str,
    mug: int,
) -> None:
    order = place_order(still_orders, alice_orders, mug)
    key = order["id"].encode()
    first = order_placed(order["id"], subject=order["customer_id"])
    await publish(broker.bootstrap, ORDER_PLACED, first.to_bytes(), key=key)
    await settled(broker.bootstrap)
    [invoice] = await invoices_for(solo_database_url, order["id"])

    # The order is still PENDING_PAYMENT: only billing's own record stops a second charge.
    status = still_orders.get(f"/orders/{order['id']}", headers=bearer(alice_orders))
    assert status.json()["status"] == "PENDING_PAYMENT"
    others = [order_placed(order["id"], subject=order["customer_id"]) for _ in range(2)]
    for event in (first, *others):
        await publish(broker.bootstrap, ORDER_PLACED, event.to_bytes(), key=key)
    await settled(broker.bootstrap)

    assert not any([await processed(solo_database_url, event.event_id) for event in others])
    assert [x.id for x in await invoices_for(solo_database_url, order["id"])] == [invoice.id]
    assert invoice.event_id == first.event_id
    await eventually(
        lambda: _has_events(broker.bootstrap, PAYMENT_SUCCEEDED, order["id"]),
        what="the payment event to be relayed",
    )
    [event] = await events_for(broker.bootstrap, PAYMENT_SUCCEEDED, order["id"])
    assert event.data["invoice_id"] == invoice.id
    assert await end_offset(broker.bootstrap, dlq(ORDER_PLACED)) == 0


async def test_an_order_no_longer_pending_payment_is_not_charged(
    solo_database_url: str,
    broker: KafkaBroker,
    still_orders: httpx.Client,
    alice_orders: str,
    mug: int,
) -> None:
    order = place_order(still_orders, alice_orders, mug)
    cancel = still_orders.post(f"/orders/{order['id']}/cancel", headers=bearer(alice_orders))
    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["status"] == "CANCELLED"

    late = order_placed(order["id"], subject=order["customer_id"])
    await publish(broker.bootstrap, ORDER_PLACED, late.to_bytes(), key=order["id"].encode())
    await settled(broker.bootstrap)

    assert not await processed(solo_database_url, late.event_id)  # nobody charged: unrecorded
    assert await invoices_for(solo_database_url, order["id"]) == []
    assert await events_for(broker.bootstrap, PAYMENT_SUCCEEDED, order["id"]) == []
    assert await events_for(broker.bootstrap, PAYMENT_FAILED, order["id"]) == []


async def _has_events(bootstrap: str, topic: str, order_id: str) -> bool:
    return bool(await events_for(bootstrap, topic, order_id))
