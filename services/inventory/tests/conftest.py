"""Fixtures: a real valkey, a real auth service and the inventory service, on loopback.

The auth service's fixture and its test helpers (login, exchange, client
credentials) are reused from services/auth/tests, valkey from hopkit.
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

# Fixtures, registered by importing them: a real valkey-server, the real auth service.
from auth_fixtures import auth as auth
from auth_fixtures import auth_server as auth_server
from auth_fixtures import issuer as issuer
from auth_testing import service_token
from hopkit.testing import ServerThread, ValkeyServer
from hopkit.testing_fixtures import valkey as valkey
from inventory_service.app import create_app
from inventory_testing import make_settings, reserve_token


@pytest.fixture(scope="session")
def inventory_server(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    settings = make_settings(tmp_path_factory.mktemp("inventory"), issuer, redis_url=valkey.url)
    with ServerThread(create_app(settings)) as server:
        yield server


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
