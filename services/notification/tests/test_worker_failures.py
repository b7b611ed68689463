"""When the directory, order, billing or auth cannot answer: the event waits, retried with
backoff past ``consumer_max_attempts`` for as long as it takes, never dead-lettered (an
outage is not bad input) and never taken for a forged event and dropped.

Each test has a broker of its own, so its consumer group sees only its events.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from auth_service.app import create_app as create_auth_app
from auth_testing import make_settings as make_auth_settings
from billing_service.app import create_app as create_billing_app
from billing_testing import make_settings as make_billing_settings
from hopkit.events import ORDER_CONFIRMED, PAYMENT_SUCCEEDED, dlq
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer, free_port
from notification_service.app import create_app
from notification_testing import (
    Customer,
    Shop,
    a_payment,
    about,
    an_order,
    captured_logs,
    committed,
    end_offset,
    event,
    eventually,
    make_settings,
    notifications,
    publish,
    stored,
)
from sqlalchemy.engine import make_url

RETRY = "event handler failed; retrying"
STUCK = "event handler waiting for a dependency; partition stuck"


@pytest.fixture
def own_kafka() -> Iterator[KafkaBroker]:
    with KafkaBroker() as broker:
        yield broker


def waits(logs: io.StringIO, max_attempts: int) -> bool:
    """Retried past max_attempts (when it used to be dead-lettered), and said to be stuck."""
    text = logs.getvalue()
    return text.count(RETRY) + text.count(STUCK) > max_attempts + 1 and STUCK in text


async def nothing_dead_lettered(bootstrap: str, topic: str) -> None:
    assert await end_offset(bootstrap, dlq(topic)) == 0


async def test_a_worker_the_issuer_refuses_waits_without_leaking(
    tmp_path: Path, issuer: str, own_kafka: KafkaBroker, shop: Shop, alice: Customer
) -> None:
    # A secret the issuer does not know is the deployment's fault, never the event's: the
    # event waits for the fix (and the logs say the partition is stuck), it is not lost.
    secret = "not-the-registered-secret"
    settings = make_settings(
        tmp_path, issuer, own_kafka.bootstrap, worker_client_secret=secret, **shop.urls
    )
    with captured_logs() as logs, ServerThread(create_app(settings)):
        order_id = await an_order(shop, alice.user_id, "CONFIRMED")
        confirmed = event(ORDER_CONFIRMED, alice.user_id, order_id)
        await publish(own_kafka.bootstrap, ORDER_CONFIRMED, confirmed.to_bytes())
        await eventually(
            lambda: waits(logs, settings.consumer_max_attempts), what="retries past the limit"
        )
        await nothing_dead_lettered(own_kafka.bootstrap, ORDER_CONFIRMED)
    # The first call the event needs (order, to check it) gets no token.
    assert "OwnerUnavailable" in logs.getvalue()
    assert secret not in logs.getvalue()
    assert await committed(own_kafka.bootstrap, ORDER_CONFIRMED) == 0  # comes again next start
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
            lambda: waits(logs, settings.consumer_max_attempts),
            what="retries past the limit while auth is away",
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
    await nothing_dead_lettered(own_kafka.bootstrap, ORDER_CONFIRMED)


async def test_a_directory_that_fails_waits_not_taken_for_an_unknown_customer(
    tmp_path: Path,
    issuer: str,
    auth_server: ServerThread,
    valkey: ValkeyServer,
    own_kafka: KafkaBroker,
    shop: Shop,
    alice: Customer,
) -> None:
    # A real auth service whose user table is gone: tokens still issue, /users answers 500.
    realm = auth_server.app.state.settings.database_url  # type: ignore[attr-defined]
    broken = tmp_path / "broken-auth.db"
    with sqlite3.connect(str(make_url(realm).database)) as source, sqlite3.connect(broken) as copy:
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
    order_id = await an_order(shop, alice.user_id, "CONFIRMED")
    with captured_logs() as logs, ServerThread(create_app(settings)):
        with ServerThread(create_auth_app(auth_settings), auth_port):
            confirmed = event(ORDER_CONFIRMED, alice.user_id, order_id)
            await publish(own_kafka.bootstrap, ORDER_CONFIRMED, confirmed.to_bytes())
            await eventually(
                lambda: waits(logs, settings.consumer_max_attempts), what="retries past the limit"
            )
            assert "DirectoryUnavailable" in logs.getvalue()
            await nothing_dead_lettered(own_kafka.bootstrap, ORDER_CONFIRMED)
            assert await stored(settings.database_url, order_id) == []
        # The directory is repaired: auth again on its own database, at the same address.
        fixed = make_auth_settings(
            tmp_path, auth_port, database_url=realm, redis_url=valkey.url, issuer=issuer
        )
        with ServerThread(create_auth_app(fixed), auth_port):
            await eventually(
                lambda: _stored_one(settings.database_url, order_id),
                within=15,
                what="the notification once the directory answers",
            )
    await nothing_dead_lettered(own_kafka.bootstrap, ORDER_CONFIRMED)


async def test_billing_away_waits_not_taken_for_a_forgery_and_is_told_once_back(
    tmp_path: Path,
    issuer: str,
    valkey: ValkeyServer,
    own_kafka: KafkaBroker,
    shop: Shop,
    alice: Customer,
) -> None:
    billing_port = free_port()  # where billing will be; nothing answers there yet
    settings = make_settings(
        tmp_path,
        issuer,
        own_kafka.bootstrap,
        order_url=shop.order_url,
        billing_url=f"http://127.0.0.1:{billing_port}",
    )
    order_id = await an_order(shop, alice.user_id, "CONFIRMED")
    await a_payment(shop, alice.user_id, order_id)
    paid = event(PAYMENT_SUCCEEDED, alice.user_id, order_id)
    with captured_logs() as logs, ServerThread(create_app(settings)):
        await publish(own_kafka.bootstrap, PAYMENT_SUCCEEDED, paid.to_bytes())
        await eventually(
            lambda: waits(logs, settings.consumer_max_attempts), what="retries past the limit"
        )
        assert "OwnerUnavailable" in logs.getvalue()
        assert "nobody notified" not in logs.getvalue()  # not dropped as if it were forged
        await nothing_dead_lettered(own_kafka.bootstrap, PAYMENT_SUCCEEDED)
        assert await stored(settings.database_url, order_id) == []
        # Billing is back: another instance on the shop's billing database.
        billing_settings = make_billing_settings(
            tmp_path / "billing",
            issuer,
            database_url=shop.billing_db,
            redis_url=valkey.url,
            worker=False,
        )
        with ServerThread(create_billing_app(billing_settings), billing_port):
            await eventually(
                lambda: _stored_one(settings.database_url, order_id),
                within=15,
                what="the notification once billing answers",
            )
    await nothing_dead_lettered(own_kafka.bootstrap, PAYMENT_SUCCEEDED)


async def _stored_one(database_url: str, order_id: str) -> bool:
    return len(await stored(database_url, order_id)) == 1
