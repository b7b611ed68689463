"""Settings refuse unsafe production configurations; the realm guard refuses demo credentials."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from auth_service import realm
from auth_service.app import create_app
from auth_service.config import DEFAULT_POLICY_FILE, Environment, Settings
from auth_service.db import create_db_engine, create_session_factory, transaction
from auth_service.models import Client, User
from auth_service.oauth.clients import hash_secret
from auth_service.passwords import hash_password
from auth_service.policy import load_policy
from auth_testing import ValkeyServer, free_port
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select, update

PRODUCTION: dict[str, Any] = {
    "env": "production",
    "issuer": "https://auth.hopshop.example",
    "redis_url": "redis://127.0.0.1:6379/0",
    "seed_demo_realm": False,
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No AUTH_ or HOPSHOP_ variable from the machine leaks into Settings()."""
    for name in list(os.environ):
        if name.upper().startswith(("AUTH_", "HOPSHOP_")):
            monkeypatch.delenv(name)
    yield monkeypatch


# Settings, constructed directly


def test_safe_production_settings_are_accepted() -> None:
    settings = Settings.model_validate(PRODUCTION)
    assert settings.env is Environment.PRODUCTION
    assert settings.is_production


@pytest.mark.parametrize(
    ("override", "variable"),
    [
        pytest.param({"seed_demo_realm": True}, "AUTH_SEED_DEMO_REALM", id="demo-realm"),
        pytest.param({"issuer": "http://auth.hopshop.example"}, "HOPSHOP_ISSUER", id="http"),
        pytest.param({"issuer": "HTTP://auth.hopshop.example"}, "HOPSHOP_ISSUER", id="HTTP"),
        pytest.param({"redis_url": None}, "HOPSHOP_REDIS_URL", id="no-redis"),
    ],
)
def test_unsafe_production_settings_are_refused(override: dict[str, Any], variable: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings.model_validate({**PRODUCTION, **override})
    assert variable in str(raised.value)


def test_production_defaults_are_refused() -> None:
    # Only the environment set: the demo realm is on by default, so that is refused first.
    with pytest.raises(ValidationError, match="AUTH_SEED_DEMO_REALM"):
        Settings.model_validate({"env": "production"})


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_defaults_are_accepted_outside_production(env: str) -> None:
    settings = Settings.model_validate({"env": env})
    assert settings.seed_demo_realm is True
    assert settings.issuer == "http://127.0.0.1:8001"
    assert settings.redis_url is None
    assert not settings.is_production


@pytest.mark.parametrize(
    "issuer",
    [
        "127.0.0.1:8001",
        "auth.hopshop.example",
        "/auth",
        "https://auth.hopshop.example?tenant=1",
        "https://auth.hopshop.example#top",
        "",
    ],
)
def test_issuer_must_be_an_absolute_url_without_query_or_fragment(issuer: str) -> None:
    with pytest.raises(ValidationError, match="HOPSHOP_ISSUER"):
        Settings.model_validate({"env": "development", "issuer": issuer})


def test_dpop_origins_are_the_issuer_auth_url_and_public_url(
    clean_env: pytest.MonkeyPatch,
) -> None:
    # RFC 9449 §4.3 point 9: the names a proof may use, from configuration only.
    clean_env.setenv("HOPSHOP_ISSUER", "https://auth.hopshop.example/realm")
    clean_env.setenv("HOPSHOP_AUTH_URL", "http://auth:8001")
    clean_env.setenv("AUTH_PUBLIC_URL", "https://auth.hopshop.example:443/")
    assert Settings().origins == (
        "https://auth.hopshop.example",
        "http://auth:8001",
        "https://auth.hopshop.example:443",  # the validator normalizes it to the first
    )
    clean_env.delenv("HOPSHOP_AUTH_URL")
    clean_env.delenv("AUTH_PUBLIC_URL")
    assert Settings().origins == ("https://auth.hopshop.example",)


@pytest.mark.parametrize(
    "url", ["auth:8001", "ftp://auth", "http://auth?x=1", "http://u@auth", "http://auth:99999"]
)
@pytest.mark.parametrize("variable", ["HOPSHOP_AUTH_URL", "AUTH_PUBLIC_URL"])
def test_other_urls_of_the_server_must_be_http_urls(
    clean_env: pytest.MonkeyPatch, variable: str, url: str
) -> None:
    clean_env.setenv(variable, url)
    with pytest.raises(ValidationError, match=variable):
        Settings()


def test_an_unknown_environment_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    # A typo must not fall back to development (and its demo realm).
    clean_env.setenv("HOPSHOP_ENV", "prod")
    with pytest.raises(
        ValidationError, match="Input should be 'development', 'test' or 'production'"
    ):
        Settings()


@pytest.mark.parametrize("ttl", [29, 301, 3600])
def test_service_tokens_live_at_most_five_minutes(ttl: int) -> None:
    with pytest.raises(ValidationError, match="service_token_ttl"):
        Settings.model_validate({"service_token_ttl": ttl})


# Settings from environment variables (DESIGN.md, Configuration)


def test_environment_variable_names(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("HOPSHOP_ENV", "test")
    clean_env.setenv("HOPSHOP_ISSUER", "https://auth.hopshop.example")
    clean_env.setenv("HOPSHOP_REDIS_URL", "redis://cache.internal:6379/2")
    clean_env.setenv("AUTH_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    clean_env.setenv("AUTH_MAX_REQUEST_BYTES", "4096")
    clean_env.setenv("AUTH_POLICY_FILE", str(tmp_path / "policy.toml"))
    settings = Settings()
    assert settings.env is Environment.TEST
    assert settings.issuer == "https://auth.hopshop.example"
    assert settings.redis_url == "redis://cache.internal:6379/2"
    assert settings.database_url == f"sqlite:///{tmp_path / 'x.db'}"
    assert settings.max_request_bytes == 4096
    assert settings.policy_file == tmp_path / "policy.toml"


def test_without_environment_variables_the_defaults_are_development(
    clean_env: pytest.MonkeyPatch,
) -> None:
    settings = Settings()
    assert settings.env is Environment.DEVELOPMENT
    assert settings.issuer == "http://127.0.0.1:8001"
    assert settings.database_url == "sqlite:///var/auth.db"


def test_production_from_environment_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HOPSHOP_ENV", "production")
    clean_env.setenv("HOPSHOP_ISSUER", "https://auth.hopshop.example")
    clean_env.setenv("HOPSHOP_REDIS_URL", "redis://cache.internal:6379/0")
    clean_env.setenv("AUTH_SEED_DEMO_REALM", "false")
    assert Settings().is_production


@pytest.mark.parametrize(
    ("name", "value", "variable"),
    [
        ("AUTH_SEED_DEMO_REALM", "true", "AUTH_SEED_DEMO_REALM"),
        ("HOPSHOP_ISSUER", "http://auth.hopshop.example", "HOPSHOP_ISSUER"),
        ("HOPSHOP_REDIS_URL", None, "HOPSHOP_REDIS_URL"),
    ],
)
def test_unsafe_production_from_environment_variables(
    clean_env: pytest.MonkeyPatch, name: str, value: str | None, variable: str
) -> None:
    clean_env.setenv("HOPSHOP_ENV", "production")
    clean_env.setenv("HOPSHOP_ISSUER", "https://auth.hopshop.example")
    clean_env.setenv("HOPSHOP_REDIS_URL", "redis://cache.internal:6379/0")
    clean_env.setenv("AUTH_SEED_DEMO_REALM", "false")
    if value is None:
        clean_env.delenv(name)
    else:
        clean_env.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert variable in str(raised.value)


# The realm guard: production refuses the demo realm's public credentials


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    from auth_testing import make_settings

    return make_settings(tmp_path, free_port(), **overrides)


def production(tmp_path: Path, valkey: ValkeyServer) -> Settings:
    return settings_for(
        tmp_path,
        env="production",
        seed_demo_realm=False,
        issuer="https://auth.hopshop.example",
        redis_url=valkey.url,
    )


async def start(app: FastAPI) -> None:
    async with app.router.lifespan_context(app):
        assert app.state.oauth_server is not None


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database the app has seeded with the demo realm, started in development mode."""
    directory = tmp_path_factory.mktemp("seeded")
    asyncio.run(start(create_app(settings_for(directory, env="development"))))
    return directory / "auth.db"


@pytest.fixture
def demo_database(seeded_database: Path, tmp_path: Path) -> Path:
    """A private copy of the seeded database (seeding hashes passwords: done once)."""
    for file in seeded_database.parent.glob("auth.db*"):
        shutil.copy(file, tmp_path / file.name)
    return tmp_path


def confidential_clients() -> set[str]:
    policy = load_policy(DEFAULT_POLICY_FILE)
    return {client_id for client_id, client in policy.clients.items() if not client.public}


async def test_production_refuses_to_start_with_the_demo_client_secrets(
    demo_database: Path, valkey: ValkeyServer
) -> None:
    app = create_app(production(demo_database, valkey))
    with pytest.raises(realm.RealmError) as raised:
        await start(app)
    message = str(raised.value)
    match = re.fullmatch(r"client '([a-z0-9-]+)' still has its public demo secret", message)
    assert match is not None, message
    assert match.group(1) in confidential_clients()


def replace_credentials(directory: Path, *, clients: bool, users: bool) -> None:
    engine = create_db_engine(f"sqlite:///{directory / 'auth.db'}")
    try:
        with transaction(create_session_factory(engine)) as session:
            if clients:
                for client_id in session.scalars(
                    select(Client.client_id).where(Client.secret_sha256.is_not(None))
                ):
                    session.execute(
                        update(Client)
                        .where(Client.client_id == client_id)
                        .values(secret_sha256=hash_secret(secrets.token_urlsafe(32)))
                    )
            if users:
                session.execute(
                    update(User).values(password_hash=hash_password(secrets.token_urlsafe(16)))
                )
    finally:
        engine.dispose()


async def test_production_refuses_to_start_with_the_demo_user_passwords(
    demo_database: Path, valkey: ValkeyServer
) -> None:
    replace_credentials(demo_database, clients=True, users=False)
    with pytest.raises(realm.RealmError) as raised:
        await start(create_app(production(demo_database, valkey)))
    message = str(raised.value)
    match = re.fullmatch(r"user '([a-z]+)' still has its public demo password", message)
    assert match is not None, message
    assert match.group(1) in {user.username for user in realm.DEMO_USERS}


async def test_production_starts_once_every_demo_credential_is_replaced(
    demo_database: Path, valkey: ValkeyServer
) -> None:
    replace_credentials(demo_database, clients=True, users=True)
    await start(create_app(production(demo_database, valkey)))


async def test_production_refuses_a_confidential_client_without_a_secret(
    tmp_path: Path, valkey: ValkeyServer
) -> None:
    # An empty database in production: nothing is seeded, so no client has a secret.
    with pytest.raises(realm.RealmError, match=r"client '[a-z0-9-]+' .* no stored secret"):
        await start(create_app(production(tmp_path, valkey)))
