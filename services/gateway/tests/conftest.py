"""Fixtures: the whole shop for real, and gateways in front of it.

Real valkey, a real Kafka-protocol broker (Tansu), and the auth, inventory,
order, billing and notification services in uvicorn threads, each on its own
SQLite file, with their Kafka workers running (shop_testing).

Nothing behind the gateway is faked: a service that is "down" is a port where
nothing listens, a "hung" one a socket that never answers.
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

# Fixtures, registered by importing them: a real valkey-server, a real Kafka-protocol
# broker with every topic (as `hopshop up` makes them), the real auth service.
from auth_fixtures import auth as auth
from auth_fixtures import auth_server as auth_server
from auth_fixtures import issuer as issuer
from auth_testing import Login, login
from gateway_service.app import create_app
from gateway_testing import StartGateway, make_settings
from hopkit.testing import KafkaBroker, ServerThread, ValkeyServer, free_port
from hopkit.testing_fixtures import kafka as kafka
from hopkit.testing_fixtures import valkey as valkey
from shop_testing import Shop, running_shop

#: Test settings every service shares: plain logs (pytest captures them), the access
#: log on (the trace tests read it); DPoP on, as in the stack.
COMMON: dict[str, object] = {"env": "test", "json_logs": False, "access_log": True}


@pytest.fixture(scope="session")
def shop(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer, kafka: KafkaBroker
) -> Iterator[Shop]:
    """inventory, order, billing and notification, with their workers, in exchange mode."""
    common = {
        **COMMON,
        "issuer": issuer,
        "redis_url": valkey.url,
        "kafka_bootstrap": kafka.bootstrap,
    }
    with running_shop(tmp_path_factory.mktemp("shop"), common) as shop:
        yield shop


@pytest.fixture(scope="session")
def start_gateway(issuer: str, valkey: ValkeyServer, shop: Shop) -> Iterator[StartGateway]:
    """Start a gateway with the test settings plus ``overrides``; all stop at the end."""
    started: list[ServerThread] = []

    def start(**overrides: object) -> ServerThread:
        # Its own URL, as services would be given it: what clients' DPoP proofs name.
        port = free_port()
        own = {"gateway_url": f"http://127.0.0.1:{port}"}
        settings = make_settings(issuer, redis_url=valkey.url, **{**shop.urls, **own, **overrides})
        server = ServerThread(create_app(settings), port).start()
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
