"""No payment event is believed: the consumer acts only on what billing's record confirms.

Billing runs for real (its API; the tests write its records with billing's own
repository, as its worker would). A forged event, one written straight to
Kafka, is dropped: no status change, no stock moved, no event emitted, not
dead-lettered, and not recorded as processed (so a genuine event that
carries the same id is still applied). Billing not answering is retried.

Each partition is handled in order, so once a later "marker" event for
another order has been applied, every event published before it was seen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from billing_service.app import create_app as create_billing_app
from billing_testing import make_settings as make_billing_settings
from hopkit import db
from hopkit.events import (
    ALL_TOPICS,
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
    Envelope,
    dlq,
)
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer, free_port
from inventory_testing import add_product
from order_service.app import create_app
from order_testing import (
    available,
    bearer,
    billed,
    make_settings,
    order_body,
    order_status,
    payment,
    place,
    publish,
    record_payment,
    records_for,
    reservation_status,
    sqlite_count,
    wait_for,
)

DROPPED = "payment event not confirmed by billing; dropped"


@pytest.fixture
def dropped(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The consumer's warnings (it runs in a server thread of this process)."""
    with caplog.at_level(logging.WARNING, logger="order_service.payments"):
        yield caplog


def drops(caplog: pytest.LogCaptureFixture, event: Envelope) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.getMessage() == DROPPED and getattr(r, "event_id", None) == event.event_id
    ]


def processed(order_db: str, event: Envelope) -> int:
    return sqlite_count(
        order_db, "SELECT count(*) FROM processed_events WHERE event_id = ?", event.event_id
    )


def confirm_marker(
    http: httpx.Client, billing_db: str, kafka: KafkaBroker, token: str, product: int
) -> None:
    """A real payment for a new order, applied: everything published before it was handled."""
    marker = place(http, token, product)
    publish(
        kafka.bootstrap,
        PAYMENT_SUCCEEDED,
        billed(billing_db, PAYMENT_SUCCEEDED, marker),
        key=marker["id"],
    )
    wait_for(lambda: order_status(http, token, marker["id"]) == "CONFIRMED", what="the marker")


def test_a_forged_payment_succeeded_confirms_nothing_and_is_dropped(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    order_db: str,
    billing_db: str,
    kafka: KafkaBroker,
    alice: str,
    dropped: pytest.LogCaptureFixture,
) -> None:
    product = add_product(inventory_db, 5)
    unpaid = place(http, alice, product, 2)  # billing charged nothing for it
    # The customer knows the order's id, total and currency: the event gets them all right.
    forged = payment(PAYMENT_SUCCEEDED, unpaid)
    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, forged, key=unpaid["id"])
    confirm_marker(http, billing_db, kafka, alice, product)

    assert order_status(http, alice, unpaid["id"]) == "PENDING_PAYMENT"
    assert reservation_status(inventory_db, unpaid["id"]) == "RESERVED"  # not sold
    assert available(inventory, product) == 2  # 5 - 2 reserved - 1 marker
    assert records_for(kafka.bootstrap, ORDER_CONFIRMED, unpaid["id"]) == []
    # Dropped, not retried, not dead-lettered, one warning, and NOT recorded as processed.
    assert processed(order_db, forged) == 0
    assert records_for(kafka.bootstrap, dlq(PAYMENT_SUCCEEDED), unpaid["id"]) == []
    [line] = drops(dropped, forged)
    assert line.type == PAYMENT_SUCCEEDED  # type: ignore[attr-defined]
    assert line.reason == "billing has no payment for the order"  # type: ignore[attr-defined]

    # The real payment, when it comes, still confirms the order, even under the event id
    # the forgery used (ids are readable by anyone on the topic; a forger may copy one).
    paid = billed(billing_db, PAYMENT_SUCCEEDED, unpaid).model_copy(
        update={"event_id": forged.event_id}
    )
    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, paid, key=unpaid["id"])
    wait_for(lambda: order_status(http, alice, unpaid["id"]) == "CONFIRMED", what="the payment")
    assert reservation_status(inventory_db, unpaid["id"]) == "COMMITTED"


def test_a_forged_payment_failed_cancels_nothing(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    billing_db: str,
    kafka: KafkaBroker,
    alice: str,
    dropped: pytest.LogCaptureFixture,
) -> None:
    product = add_product(inventory_db, 5)
    unpaid = place(http, alice, product)  # billing charged nothing yet
    paid = place(http, alice, product)
    paid_invoice = record_payment(billing_db, paid)  # billing took the money; order not told yet
    forged_unpaid = payment(PAYMENT_FAILED, unpaid, reason="card_declined")
    forged_paid = payment(PAYMENT_FAILED, paid, invoice_id=paid_invoice, reason="card_declined")
    publish(kafka.bootstrap, PAYMENT_FAILED, forged_unpaid, key=unpaid["id"])
    publish(kafka.bootstrap, PAYMENT_FAILED, forged_paid, key=paid["id"])
    # The marker is a real decline, on the same topic: it is applied.
    marker = place(http, alice, product)
    publish(
        kafka.bootstrap,
        PAYMENT_FAILED,
        billed(billing_db, PAYMENT_FAILED, marker),
        key=marker["id"],
    )
    wait_for(lambda: order_status(http, alice, marker["id"]) == "CANCELLED", what="the marker")

    for order in (unpaid, paid):
        assert order_status(http, alice, order["id"]) == "PENDING_PAYMENT"
        assert reservation_status(inventory_db, order["id"]) == "RESERVED"
        assert records_for(kafka.bootstrap, ORDER_CANCELLED, order["id"]) == []
    assert available(inventory, product) == 3  # the marker's unit came back, nothing else
    assert [r.reason for r in drops(dropped, forged_unpaid)] == [  # type: ignore[attr-defined]
        "billing has no payment for the order"
    ]
    assert [r.reason for r in drops(dropped, forged_paid)] == [  # type: ignore[attr-defined]
        "billing recorded the payment as succeeded"
    ]


def test_a_late_decline_does_not_undo_a_payment(
    http: httpx.Client,
    inventory: httpx.Client,
    inventory_db: str,
    billing_db: str,
    kafka: KafkaBroker,
    alice: str,
) -> None:
    product = add_product(inventory_db, 5)
    order = place(http, alice, product)
    paid = billed(billing_db, PAYMENT_SUCCEEDED, order)
    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, paid, key=order["id"])
    wait_for(lambda: order_status(http, alice, order["id"]) == "CONFIRMED", what="confirmation")

    # A decline about the same invoice, after the payment (another event id), changes nothing.
    late = payment(PAYMENT_FAILED, order, invoice_id=paid.data["invoice_id"])
    publish(kafka.bootstrap, PAYMENT_FAILED, late, key=order["id"])
    marker = place(http, alice, product)
    declined = billed(billing_db, PAYMENT_FAILED, marker)
    publish(kafka.bootstrap, PAYMENT_FAILED, declined, key=marker["id"])
    wait_for(lambda: order_status(http, alice, marker["id"]) == "CANCELLED", what="the marker")
    assert order_status(http, alice, order["id"]) == "CONFIRMED"
    assert records_for(kafka.bootstrap, ORDER_CANCELLED, order["id"]) == []
    assert available(inventory, product) == 4


def test_an_event_that_differs_from_billings_record_is_dropped(
    http: httpx.Client,
    inventory_db: str,
    billing_db: str,
    kafka: KafkaBroker,
    alice: str,
    dropped: pytest.LogCaptureFixture,
) -> None:
    product = add_product(inventory_db, 5)
    order = place(http, alice, product)
    invoice = record_payment(billing_db, order, status="DECLINED")
    # Billing declined it; events claiming success, whatever they say, are not it.
    claims = {
        "billing recorded the payment as failed": payment(
            PAYMENT_SUCCEEDED, order, invoice_id=invoice
        ),
    }
    for event in claims.values():
        publish(kafka.bootstrap, PAYMENT_SUCCEEDED, event, key=order["id"])
    # And for a payment billing did take: the wrong invoice, amount or currency.
    other = place(http, alice, product)
    other_invoice = record_payment(billing_db, other)
    wrong = {
        "data.invoice_id is not what billing recorded": payment(PAYMENT_SUCCEEDED, other),
        "data.amount_cents is not what billing recorded": payment(
            PAYMENT_SUCCEEDED, other, invoice_id=other_invoice, amount_cents=1
        ),
        "data.currency is not what billing recorded": payment(
            PAYMENT_SUCCEEDED, other, invoice_id=other_invoice, currency="USD"
        ),
    }
    for event in wrong.values():
        publish(kafka.bootstrap, PAYMENT_SUCCEEDED, event, key=other["id"])
    confirm_marker(http, billing_db, kafka, alice, product)

    assert order_status(http, alice, order["id"]) == "PENDING_PAYMENT"
    assert order_status(http, alice, other["id"]) == "PENDING_PAYMENT"
    for reason, event in {**claims, **wrong}.items():
        assert [r.reason for r in drops(dropped, event)] == [reason]  # type: ignore[attr-defined]


def test_when_billing_and_order_disagree_on_the_amount_the_event_is_dead_lettered(
    http: httpx.Client, inventory_db: str, billing_db: str, kafka: KafkaBroker, alice: str
) -> None:
    # Billing confirms a payment, but not of the order's total: a bug somewhere, for a human.
    product = add_product(inventory_db, 5)
    order = place(http, alice, product)
    invoice = record_payment(billing_db, order, amount_cents=1)
    event = payment(PAYMENT_SUCCEEDED, order, invoice_id=invoice, amount_cents=1)
    publish(kafka.bootstrap, PAYMENT_SUCCEEDED, event, key=order["id"])
    [dead] = wait_for(
        lambda: records_for(kafka.bootstrap, dlq(PAYMENT_SUCCEEDED), order["id"]),
        what="the event in the DLQ",
    )
    assert "Payment does not match the order" in dict(dead.headers)["x-dlq-reason"].decode()
    assert order_status(http, alice, order["id"]) == "PENDING_PAYMENT"


# -- billing away: waited out, neither dropped nor dead-lettered ---------------------------


@pytest.fixture
def own_kafka() -> Iterator[KafkaBroker]:
    """A broker of this test's own, so its order service is the only member of group order."""
    with KafkaBroker() as broker:
        broker.create_topics(ALL_TOPICS)
        yield broker


def start_billing(tmp: Path, issuer: str, valkey: ValkeyServer, port: int) -> ServerThread:
    settings = make_billing_settings(tmp, issuer, redis_url=valkey.url, worker=False)
    return ServerThread(create_billing_app(settings), port).start()


def migrated(database_url: str) -> str:
    """Billing's schema, made before billing starts, so its record is there from the start."""

    async def upgrade() -> None:
        engine = db.create_engine(database_url)
        try:
            await db.upgrade(engine, "billing_service:alembic")
        finally:
            await engine.dispose()

    asyncio.run(upgrade())
    return database_url


def test_while_billing_is_away_the_event_is_retried_then_applied(
    tmp_path: Path,
    issuer: str,
    valkey: ValkeyServer,
    inventory_server: ServerThread,
    inventory_db: str,
    own_kafka: KafkaBroker,
    alice: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    billing_port = free_port()  # nothing answers there yet
    settings = make_settings(
        tmp_path,
        issuer,
        redis_url=valkey.url,
        kafka_bootstrap=own_kafka.bootstrap,
        inventory_url=inventory_server.base_url,
        billing_url=f"http://127.0.0.1:{billing_port}",
        billing_timeout=1.0,
        consumer_max_attempts=2,  # an outage is waited out past it, never dead-lettered
    )
    product = add_product(inventory_db, 5)
    billing: ServerThread | None = None
    order_server = ServerThread(create_app(settings)).start()
    try:
        with (
            httpx.Client(base_url=order_server.base_url, timeout=15) as http,
            caplog.at_level(logging.WARNING),
        ):
            response = http.post("/orders", json=order_body((product, 1)), headers=bearer(alice))
            assert response.status_code == 201, response.text
            order: dict[str, Any] = response.json()
            billing_db = migrated(f"sqlite:///{tmp_path / 'billing.db'}")
            invoice = record_payment(billing_db, order)
            event = payment(PAYMENT_SUCCEEDED, order, invoice_id=invoice)
            publish(own_kafka.bootstrap, PAYMENT_SUCCEEDED, event, key=order["id"])

            def retries() -> int:
                return sum(
                    1
                    for r in caplog.records
                    if getattr(r, "transient", None) is True
                    and getattr(r, "event_id", None) == event.event_id
                    and getattr(r, "error", None) == "BillingUnavailable"
                )

            wait_for(
                lambda: retries() > settings.consumer_max_attempts,
                timeout=20,
                what="retries past consumer_max_attempts while billing is away",
            )
            assert records_for(own_kafka.bootstrap, dlq(PAYMENT_SUCCEEDED), order["id"]) == []
            assert order_status(http, alice, order["id"]) == "PENDING_PAYMENT"
            billing = start_billing(tmp_path, issuer, valkey, billing_port)
            wait_for(
                lambda: order_status(http, alice, order["id"]) == "CONFIRMED",
                timeout=20,
                what="the payment once billing answers",
            )
        assert not any(r.getMessage() == DROPPED for r in caplog.records)
        assert records_for(own_kafka.bootstrap, dlq(PAYMENT_SUCCEEDED), order["id"]) == []
    finally:
        order_server.stop()
        if billing is not None:
            billing.stop()
