"""Fixtures: real valkey, a real Kafka-protocol broker, the real auth, inventory and
billing services, and the order service, all on loopback.

The auth service's fixture and the auth, inventory and billing services' own
test helpers (login, exchange, products, settings) are reused from their test
folders; valkey and the broker come from hopkit.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "auth" / "tests"))
# Appended, not prepended: the auth tests import their conftest by name (`from conftest ...`).
sys.path.append(str(Path(__file__).parents[2] / "inventory" / "tests"))
sys.path.append(str(Path(__file__).parents[2] / "billing" / "tests"))
sys.path.append(str(Path(__file__).parent))

# Fixtures, registered by importing them: a real valkey-server, a real Kafka-protocol
# broker with every topic, the real auth service.
from auth_fixtures import auth as auth
from auth_fixtures import auth_server as auth_server
from auth_fixtures import issuer as issuer
from auth_testing import claims, service_token
from billing_service.app import create_app as create_billing_app
from billing_testing import make_settings as make_billing_settings
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer
from hopkit.testing_fixtures import kafka as kafka
from hopkit.testing_fixtures import valkey as valkey
from inventory_service.app import create_app as create_inventory_app
from inventory_testing import make_settings as make_inventory_settings
from order_service.app import create_app
from order_testing import make_settings, order_token


@pytest.fixture(scope="session")
def inventory_server(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    settings = make_inventory_settings(
        tmp_path_factory.mktemp("inventory"), issuer, redis_url=valkey.url
    )
    with ServerThread(create_inventory_app(settings)) as server:
        yield server


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
    tmp = tmp_path_factory.mktemp("billing")
    # billing_testing's settings: DPoP off, bearer tokens throughout as in make_settings.
    settings = make_billing_settings(tmp, issuer, redis_url=valkey.url, worker=False)
    with ServerThread(create_billing_app(settings)) as server:
        yield server


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
    with ServerThread(create_app(settings)) as server:
        yield server


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
def bob_id(bob: str) -> str:
    subject: str = claims(bob)["sub"]
    return subject


@pytest.fixture(scope="session")
def billing_worker(auth: httpx.Client) -> str:
    """billing-worker's client-credentials token for order: orders:read."""
    return service_token(auth, "billing-worker", "order", "orders:read")
