"""Events in, notifications out: real producer, real broker, real auth, order, billing, valkey.

Events are published as order and billing publish them (an Envelope, a real
aiokafka producer, trace headers), about orders and payments the real order
and billing services hold (written with their own repositories); customers
read the result through their own exchanged tokens, as the gateway would.
What happens to events their owner does not confirm is in test_forged_events.py.
"""

from __future__ import annotations

import json
import uuid

import httpx
import redis
from auth_testing import claims
from hopauth.client_credentials import token_cache_key
from hopauth.redis_cache import KEY_PREFIX
from hopkit.events import (
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
    Envelope,
)
from hopkit.testing import KafkaBroker, ValkeyServer
from notification_testing import (
    GROUP,
    Customer,
    Shop,
    a_payment,
    about,
    an_order,
    captured_logs,
    dead_letter,
    drained,
    event,
    eventually,
    headers_of,
    notifications,
    processed,
    publish,
    stored,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01".encode()


async def test_an_order_confirmation_reaches_its_customer_and_no_one_else(
    kafka: KafkaBroker,
    http: httpx.Client,
    database_url: str,
    shop: Shop,
    alice: Customer,
    bob: Customer,
) -> None:
    order_id = await an_order(shop, alice.user_id, "CONFIRMED")
    confirmed = event(ORDER_CONFIRMED, alice.user_id, order_id)
    await publish(kafka.bootstrap, ORDER_CONFIRMED, confirmed.to_bytes(), key=order_id.encode())

    await eventually(
        lambda: bool(about(notifications(http, alice.token), order_id)),
        what="alice's notification",
    )
    [seen] = about(notifications(http, alice.token), order_id)
    assert seen["kind"] == "order.confirmed"
    assert seen["message"] == f"Your order {order_id} is confirmed."
    assert seen["broadcast"] is False
    assert set(seen) == {"id", "kind", "message", "order_id", "created_at", "broadcast"}
    assert about(notifications(http, bob.token), order_id) == []

    [row] = await stored(database_url, order_id)
    assert row["recipient"] == alice.user_id
    assert row["email"] == "alice@example.com"  # from the directory, not from the event
    assert row["event_id"] == confirmed.event_id


async def test_the_worker_looks_customers_up_with_its_own_client_credentials(
    kafka: KafkaBroker, http: httpx.Client, valkey: ValkeyServer, shop: Shop, bob: Customer
) -> None:
    order_id = await an_order(shop, bob.user_id, "CONFIRMED")
    await publish(
        kafka.bootstrap, ORDER_CONFIRMED, event(ORDER_CONFIRMED, bob.user_id, order_id).to_bytes()
    )
    await eventually(
        lambda: bool(about(notifications(http, bob.token), order_id)), what="bob's notification"
    )
    # The tokens the worker used (the directory's, and order's to check the event) are
    # cached in valkey, shared by replicas.
    for audience, scope in (("auth", "users:read"), ("order", "orders:status")):
        key = KEY_PREFIX + token_cache_key("notification-worker", audience, [scope])
        with redis.Redis.from_url(valkey.url) as store:
            cached = store.get(key)
        assert cached is not None, audience
        token = claims(json.loads(cached)["access_token"])
        assert token["sub"] == token["client_id"] == "notification-worker"
        assert token["aud"] == audience
        assert token["scope"] == scope
        assert "act" not in token and "sid" not in token  # no user is behind a Kafka event


async def test_each_order_and_payment_event_gets_its_own_message_from_the_owners_record(
    kafka: KafkaBroker, http: httpx.Client, shop: Shop, alice: Customer
) -> None:
    paid = await an_order(shop, alice.user_id, "CONFIRMED", total_cents=1250)
    paid_invoice = await a_payment(shop, alice.user_id, paid, "PAID", amount_cents=1250)
    declined = await an_order(shop, alice.user_id, "CANCELLED", reason="payment_declined")
    declined_invoice = await a_payment(shop, alice.user_id, declined, "DECLINED", amount_cents=990)
    # The amounts and reasons in the events are not what the customer reads: the owners' are.
    events = [
        (
            PAYMENT_SUCCEEDED,
            event(PAYMENT_SUCCEEDED, alice.user_id, paid, invoice_id=paid_invoice, amount_cents=1),
        ),
        (
            PAYMENT_FAILED,
            event(PAYMENT_FAILED, alice.user_id, declined, invoice_id=declined_invoice),
        ),
        (ORDER_CANCELLED, event(ORDER_CANCELLED, alice.user_id, declined, reason="customer")),
    ]
    for topic, envelope in events:
        await publish(kafka.bootstrap, topic, envelope.to_bytes())
    await eventually(
        lambda: len(about(notifications(http, alice.token), declined)) == 2, what="two notes"
    )
    await eventually(lambda: bool(about(notifications(http, alice.token), paid)), what="a note")
    messages = {
        n["kind"]: n["message"]
        for order_id in (paid, declined)
        for n in about(notifications(http, alice.token), order_id)
    }
    assert messages == {
        "payment.succeeded": f"We received your payment of 12.50 EUR for order {paid}.",
        "payment.failed": f"Your payment of 9.90 EUR for order {declined} was declined.",
        "order.cancelled": f"Your order {declined} was cancelled: payment declined.",
    }


async def test_the_same_event_twice_stores_one_notification(
    kafka: KafkaBroker, http: httpx.Client, database_url: str, shop: Shop, alice: Customer
) -> None:
    order_id = await an_order(shop, alice.user_id, "CANCELLED", reason="customer")
    cancelled = event(ORDER_CANCELLED, alice.user_id, order_id, reason="customer")
    await publish(kafka.bootstrap, ORDER_CANCELLED, cancelled.to_bytes())
    await publish(kafka.bootstrap, ORDER_CANCELLED, cancelled.to_bytes())  # redelivered
    await eventually(
        lambda: drained(kafka.bootstrap, ORDER_CANCELLED), what="both records to be committed"
    )
    [seen] = about(notifications(http, alice.token), order_id)
    assert seen["message"] == f"Your order {order_id} was cancelled at your request."
    assert len(await stored(database_url, order_id)) == 1
    assert await processed(database_url, cancelled.event_id) == 1


async def test_an_unknown_customer_is_dead_lettered_and_nothing_is_stored(
    kafka: KafkaBroker, http: httpx.Client, database_url: str, shop: Shop, alice: Customer
) -> None:
    # Order and billing know the customer; the user directory does not: services disagree.
    nobody = str(uuid.uuid4())
    stranger_order = await an_order(shop, nobody, "CONFIRMED")
    await a_payment(shop, nobody, stranger_order)
    next_order = await an_order(shop, alice.user_id, "CONFIRMED")
    await a_payment(shop, alice.user_id, next_order)
    stranger = event(PAYMENT_SUCCEEDED, nobody, stranger_order, amount_cents=100)
    await publish(kafka.bootstrap, PAYMENT_SUCCEEDED, stranger.to_bytes())
    await publish(
        kafka.bootstrap,
        PAYMENT_SUCCEEDED,
        event(PAYMENT_SUCCEEDED, alice.user_id, next_order).to_bytes(),
    )

    dead = await dead_letter(kafka.bootstrap, PAYMENT_SUCCEEDED, stranger.event_id)
    headers = headers_of(dead)
    assert headers["x-dlq-reason"] == "poison: subject unknown to the user directory (404)"
    assert headers["x-dlq-attempts"] == "1"  # auth said no: not asked again
    assert headers["x-dlq-group"] == GROUP
    assert dead.value == stranger.to_bytes()
    # The partition moved on: the next event was handled and every offset committed.
    await eventually(
        lambda: bool(about(notifications(http, alice.token), next_order)), what="the next event"
    )
    await eventually(lambda: drained(kafka.bootstrap, PAYMENT_SUCCEEDED), what="the commit")
    assert await stored(database_url, stranger_order) == []
    assert await processed(database_url, stranger.event_id) == 0


async def test_malformed_events_are_dead_lettered_with_the_reason(
    kafka: KafkaBroker, database_url: str, shop: Shop, alice: Customer
) -> None:
    order_id = await an_order(shop, alice.user_id, "CONFIRMED")
    cases = {
        "poison: subject: missing; an order event names its customer": event(
            ORDER_CONFIRMED, None, order_id
        ),
        "poison: subject: not a user id": event(ORDER_CONFIRMED, "../token", order_id),
        "poison: data.order_id: missing or not an order id": Envelope.new(
            ORDER_CONFIRMED, "order", alice.user_id, {"order_id": ["x"]}
        ),
        "poison: event type 'order.placed' is not one this worker handles": event(
            "order.placed", alice.user_id, order_id
        ),
    }
    for envelope in cases.values():
        await publish(kafka.bootstrap, ORDER_CONFIRMED, envelope.to_bytes())
    for reason, envelope in cases.items():
        dead = await dead_letter(kafka.bootstrap, ORDER_CONFIRMED, envelope.event_id)
        assert headers_of(dead)["x-dlq-reason"] == reason
    assert await stored(database_url, order_id) == []


async def test_the_worker_logs_the_event_under_its_trace_and_never_a_token(
    kafka: KafkaBroker, http: httpx.Client, shop: Shop, alice: Customer
) -> None:
    order_id = await an_order(shop, alice.user_id, "CONFIRMED")
    confirmed = event(ORDER_CONFIRMED, alice.user_id, order_id)
    with captured_logs() as logs:
        await publish(
            kafka.bootstrap,
            ORDER_CONFIRMED,
            confirmed.to_bytes(),
            headers=[("traceparent", TRACEPARENT), ("x-request-id", b"req-notify-1")],
        )
        await eventually(
            lambda: bool(about(notifications(http, alice.token), order_id)), what="the note"
        )
        await eventually(lambda: confirmed.event_id in logs.getvalue(), what="the log line")
    text = logs.getvalue()
    assert "eyJ" not in text  # no JWT, whole or in part
    assert "dev-secret" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    [line] = [entry for entry in lines if entry.get("event_id") == confirmed.event_id]
    assert line["outcome"] == "handled"
    assert line["group"] == GROUP
    assert line["trace_id"] == TRACE_ID
    assert line["request_id"] == "req-notify-1"
    assert line["recipient"] == alice.user_id
    assert line["order_id"] == order_id
    assert line["notification_id"] == about(notifications(http, alice.token), order_id)[0]["id"]
    # The directory call carried the event's trace on to auth.
    lookups = [entry for entry in lines if entry.get("path") == f"/users/{alice.user_id}"]
    assert lookups and all(entry["status"] == 200 for entry in lookups)
    assert TRACE_ID in {entry["trace_id"] for entry in lookups}
