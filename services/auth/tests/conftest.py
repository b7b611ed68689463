"""Fixtures: a real valkey-server and a real auth service (uvicorn, SQLite) on loopback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

# Fixtures, registered by importing them: the real auth service, on a real valkey-server.
from auth_fixtures import auth_server as auth_server
from auth_testing import ServerThread
from hopkit.testing_fixtures import valkey as valkey


@pytest.fixture
def http(auth_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=auth_server.base_url, follow_redirects=False, timeout=10) as client:
        yield client
