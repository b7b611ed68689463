"""Fixtures: the whole shop for real, and gateways in front of it.

Real valkey, a real Kafka-protocol broker (Tansu), and the auth, inventory,
order, billing and notification services in uvicorn threads, each on its own
SQLite file, with their Kafka workers running.

Nothing behind the gateway is faked: a service that is "down" is a port where
nothing listens, a "hung" one a socket that never answers.
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
from auth_testing import Login, login
from auth_testing import make_settings as make_auth_settings
from billing_service.app import create_app as create_billing_app
from billing_service.config import Settings as BillingSettings
from gateway_service.app import create_app
from gateway_testing import StartGateway, make_settings
from hopkit.consumer import ensure_topics
from hopkit.events import ALL_TOPICS
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer, free_port
from inventory_service.app import create_app as create_inventory_app
from inventory_service.config import Settings as InventorySettings
from notification_service.app import create_app as create_notification_app
from notification_service.config import Settings as NotificationSettings
from order_service.app import create_app as create_order_app
from order_service.config import Settings as OrderSettings

#: Test settings every service shares: plain logs (pytest captures them), the access
#: log on (the trace tests read it), and Kafka consumers that join and retry quickly.
COMMON: dict[str, object] = {"env": "test", "json_logs": False, "access_log": True}


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    server = ValkeyServer(tmp_path_factory.mktemp("valkey"))
    yield server
    server.stop()


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
    tmp = tmp_path_factory.mktemp("inventory")
    settings = InventorySettings.model_validate(
        {
            **COMMON,
            "issuer": issuer,
            "redis_url": valkey.url,
            "database_url": f"sqlite:///{tmp / 'inventory.db'}",
        }
    )
    server = ServerThread(create_inventory_app(settings)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaBroker]:
    broker = KafkaBroker()
    asyncio.run(ensure_topics(broker.bootstrap, ALL_TOPICS))
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def billing_port() -> int:
    """Billing's port, known before it starts: order asks billing about payment events and
    billing asks order about placed orders, so one must know the other's address first."""
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
    tmp = tmp_path_factory.mktemp("order")
    settings = OrderSettings.model_validate(
        {
            **COMMON,
            "issuer": issuer,
            "redis_url": valkey.url,
            "kafka_bootstrap": kafka.bootstrap,
            "database_url": f"sqlite:///{tmp / 'order.db'}",
            "inventory_url": inventory_server.base_url,
            "billing_url": f"http://127.0.0.1:{billing_port}",
            "outbox_poll_interval": 0.2,
            "consumer_session_timeout_ms": 1000,
            "run_expiry_scheduler": False,
        }
    )
    server = ServerThread(create_order_app(settings)).start()
    yield server
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
    tmp = tmp_path_factory.mktemp("billing")
    settings = BillingSettings.model_validate(
        {
            **COMMON,
            "issuer": issuer,
            "redis_url": valkey.url,
            "kafka_bootstrap": kafka.bootstrap,
            "database_url": f"sqlite:///{tmp / 'billing.db'}",
            "order_url": order_server.base_url,
            "worker": True,
            "worker_backoff_first": 0.05,
            "worker_backoff_max": 0.5,
            "outbox_poll_interval": 0.2,
            "kafka_session_timeout_ms": 1000,
            "kafka_heartbeat_interval_ms": 200,
        }
    )
    server = ServerThread(create_billing_app(settings), billing_port).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def notification_server(
    tmp_path_factory: pytest.TempPathFactory,
    issuer: str,
    valkey: ValkeyServer,
    kafka: KafkaBroker,
    order_server: ServerThread,
    billing_server: ServerThread,
) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("notification")
    settings = NotificationSettings.model_validate(
        {
            **COMMON,
            "issuer": issuer,
            "redis_url": valkey.url,
            "kafka_bootstrap": kafka.bootstrap,
            "database_url": f"sqlite:///{tmp / 'notification.db'}",
            # Where the worker checks each event before it tells anyone.
            "order_url": order_server.base_url,
            "billing_url": billing_server.base_url,
            "worker_enabled": True,
            "consumer_session_timeout_ms": 1000,
            "consumer_heartbeat_interval_ms": 200,
            "consumer_backoff_first": 0.05,
            "consumer_backoff_max": 0.5,
        }
    )
    server = ServerThread(create_notification_app(settings)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def service_urls(
    inventory_server: ServerThread,
    order_server: ServerThread,
    billing_server: ServerThread,
    notification_server: ServerThread,
) -> dict[str, str]:
    """Where the gateway finds each service."""
    return {
        "inventory_url": inventory_server.base_url,
        "order_url": order_server.base_url,
        "billing_url": billing_server.base_url,
        "notification_url": notification_server.base_url,
    }


@pytest.fixture(scope="session")
def start_gateway(
    issuer: str, valkey: ValkeyServer, service_urls: dict[str, str]
) -> Iterator[StartGateway]:
    """Start a gateway with the test settings plus ``overrides``; all stop at the end."""
    started: list[ServerThread] = []

    def start(**overrides: object) -> ServerThread:
        settings = make_settings(issuer, redis_url=valkey.url, **{**service_urls, **overrides})
        server = ServerThread(create_app(settings)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def gateway(start_gateway: StartGateway) -> ServerThread:
    return start_gateway()


@pytest.fixture(scope="session")
def http(gateway: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def alice(auth: httpx.Client) -> Login:
    return login(auth, "alice")


@pytest.fixture(scope="session")
def bob(auth: httpx.Client) -> Login:
    return login(auth, "bob")


@pytest.fixture(scope="session")
def carol(auth: httpx.Client) -> Login:
    return login(auth, "carol")
