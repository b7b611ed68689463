"""Fixtures: real valkey, a real Kafka-protocol broker, the real auth, inventory and
billing services, and the order service, all on loopback.

The auth and inventory services' own test helpers (login, exchange, products)
are reused from their test folders.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "auth" / "tests"))
# Appended, not prepended: the auth tests import their conftest by name (`from conftest ...`).
sys.path.append(str(Path(__file__).parents[2] / "inventory" / "tests"))
sys.path.append(str(Path(__file__).parent))

from auth_service.app import create_app as create_auth_app
from auth_testing import claims
from auth_testing import make_settings as make_auth_settings
from billing_service.app import create_app as create_billing_app
from billing_service.config import Settings as BillingSettings
from hopkit.consumer import ensure_topics
from hopkit.events import ALL_TOPICS
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer, free_port
from inventory_service.app import create_app as create_inventory_app
from inventory_testing import make_settings as make_inventory_settings
from order_service.app import create_app
from order_testing import make_settings, order_token, service_token


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    server = ValkeyServer(tmp_path_factory.mktemp("valkey"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaBroker]:
    broker = KafkaBroker()
    asyncio.run(ensure_topics(broker.bootstrap, ALL_TOPICS))
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def auth_server(
    tmp_path_factory: pytest.TempPathFactory, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    port = free_port()
    settings = make_auth_settings(tmp_path_factory.mktemp("auth"), port, redis_url=valkey.url)
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
def inventory_server(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    settings = make_inventory_settings(
        tmp_path_factory.mktemp("inventory"), issuer, redis_url=valkey.url
    )
    server = ServerThread(create_inventory_app(settings)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def inventory_db(inventory_server: ServerThread) -> str:
    url: str = inventory_server.app.state.settings.database_url
    return url


@pytest.fixture(scope="session")
def inventory(inventory_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=inventory_server.base_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def billing_server(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    """The real billing service, API only: the record payment events are checked against.

    Its worker is off (nothing charges here); the tests write its payment records
    with billing's own repository (order_testing.record_payment).
    """
    settings = BillingSettings.model_validate(
        {
            "env": "test",
            "issuer": issuer,
            "redis_url": valkey.url,
            "database_url": f"sqlite:///{tmp_path_factory.mktemp('billing') / 'billing.db'}",
            "worker": False,
            "json_logs": False,
            "access_log": False,
            "dpop": False,  # bearer tokens throughout, as in make_settings
        }
    )
    server = ServerThread(create_billing_app(settings)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def billing_db(billing_server: ServerThread) -> str:
    url: str = billing_server.app.state.settings.database_url
    return url


@pytest.fixture(scope="session")
def order_server(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: str,
    valkey: ValkeyServer,
    kafka: KafkaBroker,
    inventory_server: ServerThread,
    billing_server: ServerThread,
) -> Iterator[ServerThread]:
    settings = make_settings(
        tmp_path_factory.mktemp("order"),
        issuer,
        redis_url=valkey.url,
        kafka_bootstrap=kafka.bootstrap,
        inventory_url=inventory_server.base_url,
        billing_url=billing_server.base_url,
    )
    server = ServerThread(create_app(settings)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def order_db(order_server: ServerThread) -> str:
    url: str = order_server.app.state.settings.database_url
    return url


@pytest.fixture(scope="session")
def http(order_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=order_server.base_url, timeout=15) as client:
        yield client


@pytest.fixture(scope="session")
def alice(auth: httpx.Client) -> str:
    """alice's token as the gateway gets it for order: orders:read orders:write."""
    return order_token(auth, "alice")


@pytest.fixture(scope="session")
def alice_id(alice: str) -> str:
    subject: str = claims(alice)["sub"]
    return subject


@pytest.fixture(scope="session")
def bob(auth: httpx.Client) -> str:
    return order_token(auth, "bob")


@pytest.fixture(scope="session")
def billing_worker(auth: httpx.Client) -> str:
    """billing-worker's client-credentials token for order: orders:read."""
    return service_token(auth, "billing-worker", "order", "orders:read")
