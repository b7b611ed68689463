"""Fixtures: a real valkey, a real auth service and the inventory service, on loopback.

The auth service's own test helpers (login, exchange, client credentials)
are reused from services/auth/tests.
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
from hopkit.testing import ServerThread, ValkeyServer, free_port
from inventory_service.app import create_app
from inventory_testing import make_settings, reserve_token, service_token


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
    settings = make_settings(tmp_path_factory.mktemp("inventory"), issuer, redis_url=valkey.url)
    server = ServerThread(create_app(settings)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(inventory_server: ServerThread) -> str:
    url: str = inventory_server.app.state.settings.database_url
    return url


@pytest.fixture(scope="session")
def http(inventory_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=inventory_server.base_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def reserver(auth: httpx.Client) -> str:
    """alice's token as exchanged by gateway, then by order: aud=inventory, inventory:reserve."""
    return reserve_token(auth, "alice")


@pytest.fixture(scope="session")
def order_service(auth: httpx.Client) -> str:
    """The order service's own (client-credentials) token: inventory:release."""
    return service_token(auth, "order", "inventory", "inventory:release")


@pytest.fixture(scope="session")
def scheduler(auth: httpx.Client) -> str:
    """The order-scheduler's client-credentials token: inventory:release."""
    return service_token(auth, "order-scheduler", "inventory", "inventory:release")
