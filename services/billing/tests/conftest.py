"""Fixtures: real valkey, a real Kafka-protocol broker (Tansu), a real auth service, billing.

The auth service's own test helpers (login, exchange, client credentials) are
reused from services/auth/tests. Every server runs on loopback: the HTTP
services in uvicorn threads of the test process, valkey and the broker as
processes started from their wheels.
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
sys.path.append(str(Path(__file__).parent))

from auth_service.app import create_app as create_auth_app
from auth_testing import make_settings as make_auth_settings
from billing_service.app import create_app
from billing_testing import make_settings, order_token, product_id, worker_settings
from hopkit.consumer import ensure_topics
from hopkit.events import ALL_TOPICS
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer, free_port
from inventory_service.app import create_app as create_inventory_app
from inventory_service.config import Settings as InventorySettings
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
    # As `hopshop up` does: every topic and its DLQ exist before any service starts.
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
def api_server(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    """Billing with its worker off: the invoice API alone (invoices added by our own code)."""
    settings = make_settings(tmp_path_factory.mktemp("billing-api"), issuer, redis_url=valkey.url)
    assert not settings.runs_worker
    server = ServerThread(create_app(settings)).start()
    yield server
    server.stop()


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
    settings = InventorySettings.model_validate(
        {
            "env": "test",
            "issuer": issuer,
            "redis_url": valkey.url,
            "database_url": f"sqlite:///{tmp_path_factory.mktemp('inventory') / 'inventory.db'}",
            "json_logs": False,
            "access_log": False,
            "dpop": False,  # bearer tokens throughout, as in billing_testing.make_settings
        }
    )
    server = ServerThread(create_inventory_app(settings)).start()
    yield server
    server.stop()


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
    settings = OrderSettings.model_validate(
        {
            "env": "test",
            "issuer": issuer,
            "redis_url": valkey.url,
            "kafka_bootstrap": kafka.bootstrap,
            "inventory_url": inventory_server.base_url,
            "billing_url": f"http://127.0.0.1:{billing_port}",
            "database_url": f"sqlite:///{tmp_path_factory.mktemp('order') / 'order.db'}",
            "json_logs": False,
            "access_log": False,
            "dpop": False,  # bearer tokens throughout, as in billing_testing.make_settings
            "outbox_poll_interval": 0.2,
            "consumer_session_timeout_ms": 1000,
            "run_expiry_scheduler": False,
        }
    )
    server = ServerThread(create_order_app(settings)).start()
    yield server
    server.stop()


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
    settings = OrderSettings.model_validate(
        {
            "env": "test",
            "issuer": issuer,
            "redis_url": valkey.url,
            "inventory_url": inventory_server.base_url,
            "database_url": f"sqlite:///{tmp_path_factory.mktemp('order-still') / 'order.db'}",
            "json_logs": False,
            "access_log": False,
            "dpop": False,  # bearer tokens throughout, as in billing_testing.make_settings
            "run_expiry_scheduler": False,
        }
    )
    assert settings.kafka_bootstrap is None
    server = ServerThread(create_order_app(settings)).start()
    with httpx.Client(base_url=server.base_url, timeout=15) as client:
        yield client
    server.stop()


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
    server = ServerThread(create_app(settings), billing_port).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def billing_database_url(billing_server: ServerThread) -> str:
    url: str = billing_server.app.state.settings.database_url
    return url


@pytest.fixture(scope="session")
def billing(billing_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=billing_server.base_url, timeout=10) as client:
        yield client
