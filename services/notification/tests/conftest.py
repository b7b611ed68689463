"""Fixtures: a real valkey, a real Kafka-protocol broker, a real auth service, the real
order and billing services (their APIs: what the worker checks events with) and the
notification service (API and worker) on loopback.

Valkey and the broker come from hopkit; the auth client and issuer fixtures and
the auth, order and billing services' own test helpers (login, exchange, client
credentials, settings) are reused from their test folders. The auth server is
this folder's own: its access log is on, for counting the worker's lookups.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "auth" / "tests"))
# Appended, not prepended: the auth tests import their conftest by name (`from conftest ...`).
sys.path.append(str(Path(__file__).parents[2] / "order" / "tests"))
sys.path.append(str(Path(__file__).parents[2] / "billing" / "tests"))
sys.path.append(str(Path(__file__).parent))

# Fixtures, registered by importing them: a real valkey-server, a real Kafka-protocol
# broker with every topic (as `hopshop up` makes them), and a client of the auth
# service and its issuer URL, both on the `auth_server` defined below.
from auth_fixtures import auth as auth
from auth_fixtures import issuer as issuer
from auth_service.app import create_app as create_auth_app
from auth_testing import make_settings as make_auth_settings
from billing_service.app import create_app as create_billing_app
from billing_testing import make_settings as make_billing_settings
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer, free_port
from hopkit.testing_fixtures import kafka as kafka
from hopkit.testing_fixtures import valkey as valkey
from notification_service.app import create_app
from notification_testing import Customer, Shop, customer, make_settings, service_token
from order_service.app import create_app as create_order_app
from order_testing import make_settings as make_order_settings


@pytest.fixture(scope="session")
def auth_server(
    tmp_path_factory: pytest.TempPathFactory, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    """The real auth service, as auth_fixtures starts it but with its access log on: it
    shows the worker's directory calls, with the trace they carried."""
    port = free_port()
    settings = make_auth_settings(
        tmp_path_factory.mktemp("auth"), port, redis_url=valkey.url, access_log=True
    )
    with ServerThread(create_auth_app(settings), port) as server:
        yield server


@pytest.fixture(scope="session")
def shop(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[Shop]:
    """The real order and billing services, API only: the owners events are checked with.

    No Kafka and no workers: the tests write their records (an order in some
    state, a payment billing took or declined) with each service's own repository.
    Bearer tokens (DPoP off), as in make_settings: order_testing's and billing_testing's.
    """
    order_settings = make_order_settings(
        tmp_path_factory.mktemp("order"), issuer, redis_url=valkey.url
    )
    billing_settings = make_billing_settings(
        tmp_path_factory.mktemp("billing"), issuer, redis_url=valkey.url, worker=False
    )
    assert order_settings.kafka_bootstrap is None
    with (
        ServerThread(create_order_app(order_settings)) as order,
        ServerThread(create_billing_app(billing_settings)) as billing,
    ):
        yield Shop(
            order_url=order.base_url,
            billing_url=billing.base_url,
            order_db=order_settings.database_url,
            billing_db=billing_settings.database_url,
        )


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
    with ServerThread(create_app(settings)) as server:
        yield server


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
