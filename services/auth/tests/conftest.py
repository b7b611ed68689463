"""Fixtures: a real valkey-server and a real auth service (uvicorn, SQLite) on loopback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from auth_service.app import create_app
from auth_testing import ServerThread, ValkeyServer, free_port, make_settings


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
    settings = make_settings(tmp_path_factory.mktemp("auth"), port, redis_url=valkey.url)
    server = ServerThread(create_app(settings), port).start()
    yield server
    server.stop()


@pytest.fixture
def http(auth_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=auth_server.base_url, follow_redirects=False, timeout=10) as client:
        yield client
