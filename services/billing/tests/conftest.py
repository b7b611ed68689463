"""Fixtures: real valkey, a real Kafka-protocol broker (Tansu), a real auth service, billing.

The auth service's fixture and the auth, inventory and order services' own test
helpers (login, exchange, settings) are reused from their test folders; valkey
and the broker come from hopkit. Every server runs on loopback: the HTTP
services in uvicorn threads of the test process, valkey and the broker as
processes started from their wheels.
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
sys.path.append(str(Path(__file__).parents[2] / "order" / "tests"))
sys.path.append(str(Path(__file__).parent))

# Fixtures, registered by importing them: a real valkey-server, a real Kafka-protocol
# broker with every topic (as `hopshop up` makes them), the real auth service.
from auth_fixtures import auth as auth
from auth_fixtures import auth_server as auth_server
from auth_fixtures import issuer as issuer
from billing_service.app import create_app
from billing_testing import make_settings, order_token, product_id, worker_settings
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer, free_port
from hopkit.testing_fixtures import kafka as kafka
from hopkit.testing_fixtures import valkey as valkey
from inventory_service.app import create_app as create_inventory_app
from inventory_testing import make_settings as make_inventory_settings
from order_service.app import create_app as create_order_app
from order_testing import make_settings as make_order_settings


@pytest.fixture(scope="session")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    """Billing with its worker off: the invoice API alone (invoices added by our own code)."""
    settings = make_settings(tmp_path_factory.mktemp("billing-api"), issuer, redis_url=valkey.url)
    assert not settings.runs_worker
    with ServerThread(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="session")
def api_database_url(api_server: ServerThread) -> str:
    url: str = api_server.app.state.settings.database_url
    return url


@pytest.fixture(scope="session")
def http(api_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.base_url, timeout=10) as client:
        yield client


# -- the shop behind billing: the real inventory and order services --------------------


@pytest.fixture(scope="session")
def inventory_server(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    # Bearer tokens throughout (DPoP off), as in billing_testing.make_settings.
    settings = make_inventory_settings(
        tmp_path_factory.mktemp("inventory"), issuer, redis_url=valkey.url
    )
    with ServerThread(create_inventory_app(settings)) as server:
        yield server


@pytest.fixture(scope="session")
def billing_port() -> int:
    """Where billing (with its worker) will listen: order asks it about payment events, and
    billing asks order about placed orders, so one of them needs the other's port first."""
    return free_port()


@pytest.fixture(scope="session")
def order_server(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: str,
    valkey: ValkeyServer,
    kafka: KafkaBroker,
    inventory_server: ServerThread,
    billing_port: int,
) -> Iterator[ServerThread]:
    """The real order service: places orders (outbox -> order.placed), consumes payments
    (checking each with billing's record before it confirms or cancels)."""
    # Bearer tokens (DPoP off), a fast outbox and consumer group: order_testing.make_settings.
    settings = make_order_settings(
        tmp_path_factory.mktemp("order"),
        issuer,
        redis_url=valkey.url,
        kafka_bootstrap=kafka.bootstrap,
        inventory_url=inventory_server.base_url,
        billing_url=f"http://127.0.0.1:{billing_port}",
    )
    with ServerThread(create_order_app(settings)) as server:
        yield server


@pytest.fixture(scope="session")
def alice_orders(auth: httpx.Client) -> str:
    """alice's token as the gateway gets it for the order service."""
    return order_token(auth, "alice")


@pytest.fixture(scope="session")
def mug(inventory_server: ServerThread) -> int:
    """A demo product (seeded by inventory), 12.90 EUR."""
    with httpx.Client(base_url=inventory_server.base_url, timeout=10) as inventory:
        return product_id(inventory, "HOP-MUG")


@pytest.fixture(scope="session")
def orders(order_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=order_server.base_url, timeout=15) as client:
        yield client


@pytest.fixture(scope="session")
def still_orders(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: str,
    valkey: ValkeyServer,
    inventory_server: ServerThread,
) -> Iterator[httpx.Client]:
    """A second, real order service with no Kafka: its orders stay as the test leaves them.

    Its order.placed events stay in its outbox; the tests publish order.placed
    themselves, and no payment event ever moves an order out of PENDING_PAYMENT.
    """
    settings = make_order_settings(
        tmp_path_factory.mktemp("order-still"),
        issuer,
        redis_url=valkey.url,
        inventory_url=inventory_server.base_url,
    )
    assert settings.kafka_bootstrap is None
    with (
        ServerThread(create_order_app(settings)) as server,
        httpx.Client(base_url=server.base_url, timeout=15) as client,
    ):
        yield client


@pytest.fixture(scope="session")
def billing_server(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: str,
    valkey: ValkeyServer,
    kafka: KafkaBroker,
    order_server: ServerThread,
    billing_port: int,
) -> Iterator[ServerThread]:
    """Billing with its worker: consumes order.placed from the broker the order service uses."""
    settings = worker_settings(
        tmp_path_factory.mktemp("billing"),
        issuer,
        kafka.bootstrap,
        order_url=order_server.base_url,
        redis_url=valkey.url,
    )
    with ServerThread(create_app(settings), billing_port) as server:
        yield server


@pytest.fixture(scope="session")
def billing_database_url(billing_server: ServerThread) -> str:
    url: str = billing_server.app.state.settings.database_url
    return url


@pytest.fixture(scope="session")
def billing(billing_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=billing_server.base_url, timeout=10) as client:
        yield client
