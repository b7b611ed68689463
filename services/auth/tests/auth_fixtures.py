"""pytest fixtures: the real auth service on loopback, for the tests of every service.

A conftest imports the ones its tests stand on, with hopkit's ``valkey`` (which
``auth_server`` needs), so that a reader sees them there::

    from auth_fixtures import auth as auth
    from auth_fixtures import auth_server as auth_server
    from auth_fixtures import issuer as issuer
    from hopkit.testing_fixtures import valkey as valkey

pytest finds a fixture by its name in the conftest's namespace, so the import is
the registration (``x as x`` tells linters it is meant).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from auth_service.app import create_app
from auth_testing import make_settings
from hopkit.testing import ServerThread, ValkeyServer, free_port

__all__ = ["auth", "auth_server", "issuer"]


@pytest.fixture(scope="session")
def auth_server(
    tmp_path_factory: pytest.TempPathFactory, valkey: ValkeyServer
) -> Iterator[ServerThread]:
    """The auth service (SQLite; revocations and DPoP proofs' ``jti`` in the real valkey).

    Its port is chosen first: the issuer URL it signs into every token names it.
    """
    port = free_port()
    settings = make_settings(tmp_path_factory.mktemp("auth"), port, redis_url=valkey.url)
    with ServerThread(create_app(settings), port) as server:
        yield server


@pytest.fixture(scope="session")
def issuer(auth_server: ServerThread) -> str:
    return auth_server.base_url


@pytest.fixture(scope="session")
def auth(auth_server: ServerThread) -> Iterator[httpx.Client]:
    """A client of the auth service for logins and token requests; redirects are not followed."""
    with httpx.Client(base_url=auth_server.base_url, follow_redirects=False, timeout=10) as client:
        yield client
