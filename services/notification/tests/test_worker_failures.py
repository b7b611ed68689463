"""When the directory, order or billing cannot answer: retried with backoff, dead-lettered
only in the end (never taken for a forged event and dropped).

Each test has a broker of its own, so its consumer group sees only its events.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from auth_service.app import create_app as create_auth_app
from auth_testing import make_settings as make_auth_settings
from hopkit.events import ORDER_CONFIRMED, PAYMENT_SUCCEEDED
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer, free_port
from notification_service.app import create_app
from notification_testing import (
    Customer,
    Shop,
    a_payment,
    about,
    an_order,
    captured_logs,
    dead_letter,
    event,
    eventually,
    headers_of,
    make_settings,
    notifications,
    publish,
    stored,
)
from sqlalchemy.engine import make_url


@pytest.fixture
def own_kafka() -> Iterator[KafkaBroker]:
    with KafkaBroker() as broker:
        yield broker


async def test_a_worker_the_issuer_refuses_retries_then_dead_letters_without_leaking(
    tmp_path: Path, issuer: str, own_kafka: KafkaBroker, shop: Shop, alice: Customer
) -> None:
    secret = "not-the-registered-secret"
    settings = make_settings(
        tmp_path, issuer, own_kafka.bootstrap, worker_client_secret=secret, **shop.urls
    )
    with captured_logs() as logs, ServerThread(create_app(settings)):
        order_id = await an_order(shop, alice.user_id, "CONFIRMED")
        confirmed = event(ORDER_CONFIRMED, alice.user_id, order_id)
        await publish(own_kafka.bootstrap, ORDER_CONFIRMED, confirmed.to_bytes())
        dead = await dead_letter(own_kafka.bootstrap, ORDER_CONFIRMED, confirmed.event_id)
    headers = headers_of(dead)
    # The first call the event needs (order, to check it) gets no token.
    assert headers["x-dlq-reason"] == (
        "handler failed: OwnerUnavailable: order unreachable: TokenRequestError"
    )
    assert headers["x-dlq-attempts"] == str(settings.consumer_max_attempts)
    assert secret not in str(dead.headers)
    assert secret not in logs.getvalue()
    assert logs.getvalue().count("event handler failed; retrying") == 2
    assert await stored(settings.database_url, order_id) == []


async def test_the_worker_rides_out_an_auth_outage(
    tmp_path: Path,
    issuer: str,
    auth_server: ServerThread,
    own_kafka: KafkaBroker,
    valkey: ValkeyServer,
    shop: Shop,
    alice: Customer,
) -> None:
    auth_port = free_port()  # where auth will be; nothing answers there yet
    settings = make_settings(
        tmp_path,
        issuer,
        own_kafka.bootstrap,
        auth_url=f"http://127.0.0.1:{auth_port}",
        consumer_max_attempts=100,
        consumer_backoff_max=0.3,
        **shop.urls,
    )
    order_id = await an_order(shop, alice.user_id, "CONFIRMED")
    confirmed = event(ORDER_CONFIRMED, alice.user_id, order_id)
    with (
        captured_logs() as logs,
        ServerThread(create_app(settings)) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        await publish(own_kafka.bootstrap, ORDER_CONFIRMED, confirmed.to_bytes())
        await eventually(
            lambda: logs.getvalue().count("event handler failed; retrying") >= 2,
            what="failed attempts while auth is away",
        )
        assert about(notifications(http, alice.token), order_id) == []
        # Auth comes back: another instance of the same realm (same database, keys).
        # Its tokens name the same issuer, so order and billing take them too.
        auth_settings = make_auth_settings(
            tmp_path,
            auth_port,
            database_url=auth_server.app.state.settings.database_url,  # type: ignore[attr-defined]
            redis_url=valkey.url,
            issuer=issuer,
        )
        with ServerThread(create_auth_app(auth_settings), auth_port):
            await eventually(
                lambda: bool(about(notifications(http, alice.token), order_id)),
                within=15,
                what="the notification once auth answers",
            )
    [row] = await stored(settings.database_url, order_id)
    assert row["email"] == "alice@example.com"
    assert "OwnerUnavailable" in logs.getvalue()  # no token for order while auth was away


async def test_a_directory_that_fails_is_retried_not_taken_for_an_unknown_customer(
    tmp_path: Path,
    issuer: str,
    auth_server: ServerThread,
    own_kafka: KafkaBroker,
    shop: Shop,
    alice: Customer,
) -> None:
    # A real auth service whose user table is gone: tokens still issue, /users answers 500.
    realm = make_url(auth_server.app.state.settings.database_url).database  # type: ignore[attr-defined]
    broken = tmp_path / "broken-auth.db"
    with sqlite3.connect(str(realm)) as source, sqlite3.connect(broken) as copy:
        source.backup(copy)
        copy.execute("DROP TABLE users")
    auth_port = free_port()
    auth_settings = make_auth_settings(
        tmp_path,
        auth_port,
        database_url=f"sqlite:///{broken}",
        seed_demo_realm=False,
        issuer=issuer,  # the same realm's name and keys: order takes its tokens
    )
    settings = make_settings(
        tmp_path, issuer, own_kafka.bootstrap, auth_url=f"http://127.0.0.1:{auth_port}", **shop.urls
    )
    with (
        ServerThread(create_auth_app(auth_settings), auth_port),
        ServerThread(create_app(settings)),
    ):
        order_id = await an_order(shop, alice.user_id, "CONFIRMED")
        confirmed = event(ORDER_CONFIRMED, alice.user_id, order_id)
        await publish(own_kafka.bootstrap, ORDER_CONFIRMED, confirmed.to_bytes())
        dead = await dead_letter(own_kafka.bootstrap, ORDER_CONFIRMED, confirmed.event_id)
    headers = headers_of(dead)
    assert headers["x-dlq-reason"] == (
        "handler failed: DirectoryUnavailable: user directory answered 500"
    )
    assert headers["x-dlq-attempts"] == str(settings.consumer_max_attempts)
    assert await stored(settings.database_url, order_id) == []


async def test_billing_away_is_retried_then_dead_lettered_not_taken_for_a_forgery(
    tmp_path: Path, issuer: str, own_kafka: KafkaBroker, shop: Shop, alice: Customer
) -> None:
    settings = make_settings(
        tmp_path,
        issuer,
        own_kafka.bootstrap,
        order_url=shop.order_url,
        billing_url=f"http://127.0.0.1:{free_port()}",  # nothing answers there
    )
    order_id = await an_order(shop, alice.user_id, "CONFIRMED")
    await a_payment(shop, alice.user_id, order_id)
    paid = event(PAYMENT_SUCCEEDED, alice.user_id, order_id)
    with captured_logs() as logs, ServerThread(create_app(settings)):
        await publish(own_kafka.bootstrap, PAYMENT_SUCCEEDED, paid.to_bytes())
        dead = await dead_letter(own_kafka.bootstrap, PAYMENT_SUCCEEDED, paid.event_id)
    headers = headers_of(dead)
    assert headers["x-dlq-reason"] == (
        "handler failed: OwnerUnavailable: billing unreachable: ConnectError"
    )
    assert headers["x-dlq-attempts"] == str(settings.consumer_max_attempts)
    assert "nobody notified" not in logs.getvalue()  # not dropped as if it were forged
    assert await stored(settings.database_url, order_id) == []
