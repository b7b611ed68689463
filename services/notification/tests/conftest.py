"""Fixtures: a real valkey, a real Kafka-protocol broker, a real auth service, the real
order and billing services (their APIs: what the worker checks events with) and the
notification service (API and worker) on loopback.

The auth service's own test helpers (login, exchange, client credentials,
mint) are reused from services/auth/tests.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "auth" / "tests"))
# Appended, not prepended: the auth tests import their conftest by name (`from conftest ...`).
sys.path.append(str(Path(__file__).parent))

from auth_service.app import create_app as create_auth_app
from auth_testing import make_settings as make_auth_settings
from billing_service.app import create_app as create_billing_app
from billing_service.config import Settings as BillingSettings
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer, free_port
from notification_service.app import create_app
from notification_testing import Customer, Shop, customer, make_settings, service_token
from order_service.app import create_app as create_order_app
from order_service.config import Settings as OrderSettings


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    server = ValkeyServer(tmp_path_factory.mktemp("valkey"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaBroker]:
    broker = KafkaBroker()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def auth_server(
    tmp_path_factory: pytest.TempPathFactory, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    port = free_port()
    # Its access log shows the worker's directory calls, with the trace they carried.
    settings = make_auth_settings(
        tmp_path_factory.mktemp("auth"), port, redis_url=valkey.url, access_log=True
    )
    server = ServerThread(create_auth_app(settings), port).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def issuer(auth_server: ServerThread) -> str:
    return auth_server.base_url


@pytest.fixture(scope="session")
def auth(auth_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=auth_server.base_url, follow_redirects=False, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def shop(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[Shop]:
    """The real order and billing services, API only: the owners events are checked with.

    No Kafka and no workers: the tests write their records (an order in some
    state, a payment billing took or declined) with each service's own repository.
    """
    tmp = tmp_path_factory.mktemp("shop")
    common = {
        "env": "test",
        "issuer": issuer,
        "redis_url": valkey.url,
        "json_logs": False,
        "access_log": False,
        "dpop": False,  # bearer tokens, as in make_settings
    }
    order_settings = OrderSettings.model_validate(
        {**common, "database_url": f"sqlite:///{tmp / 'order.db'}", "run_expiry_scheduler": False}
    )
    billing_settings = BillingSettings.model_validate(
        {**common, "database_url": f"sqlite:///{tmp / 'billing.db'}", "worker": False}
    )
    order = ServerThread(create_order_app(order_settings)).start()
    billing = ServerThread(create_billing_app(billing_settings)).start()
    yield Shop(
        order_url=order.base_url,
        billing_url=billing.base_url,
        order_db=order_settings.database_url,
        billing_db=billing_settings.database_url,
    )
    billing.stop()
    order.stop()


@pytest.fixture(scope="session")
def notification_server(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: str,
    valkey: ValkeyServer,
    kafka: KafkaBroker,
    shop: Shop,
) -> Iterator[ServerThread]:
    settings = make_settings(
        tmp_path_factory.mktemp("notification"),
        issuer,
        kafka.bootstrap,
        redis_url=valkey.url,
        auth_url=issuer,
        # Every event looks its customer up, so the lookups show in auth's access log
        # (test_worker, test_told_once); the cache has its own server in test_contacts.
        contact_ttl=0,
        **shop.urls,
    )
    server = ServerThread(create_app(settings)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(notification_server: ServerThread) -> str:
    url: str = notification_server.app.state.settings.database_url  # type: ignore[attr-defined]
    return url


@pytest.fixture(scope="session")
def http(notification_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=notification_server.base_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def alice(auth: httpx.Client) -> Customer:
    return customer(auth, "alice")


@pytest.fixture(scope="session")
def bob(auth: httpx.Client) -> Customer:
    return customer(auth, "bob")


@pytest.fixture(scope="session")
def gateway(auth: httpx.Client) -> str:
    """The gateway's own client-credentials token for broadcasts: no user in it."""
    return service_token(auth, "gateway", "notification", "notifications:broadcast")
