"""The Alembic migrations build exactly the schema of auth_service.models, both ways."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from auth_service.db import create_db_engine
from auth_service.migrations import alembic_config, upgrade
from auth_service.models import Base
from sqlalchemy import Engine, create_engine, inspect

VERSION_TABLE = "alembic_version"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'auth.db'}"


@pytest.fixture
def config(database_url: str) -> Config:
    return alembic_config(database_url)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def schema_differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head(config: Config) -> str:
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"the migrations have several heads: {heads}"
    return heads[0]


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_there_is_one_head_and_every_revision_can_be_downgraded(config: Config) -> None:
    head(config)
    for revision in ScriptDirectory.from_config(config).walk_revisions():
        assert revision.module.downgrade is not None, revision.revision


def test_upgrade_head_on_an_empty_database_yields_the_models_schema(
    config: Config, engine: Engine
) -> None:
    assert tables(engine) == set()
    command.upgrade(config, "head")
    assert tables(engine) == set(Base.metadata.tables) | {VERSION_TABLE}
    assert schema_differences(engine) == []
    assert current_revision(engine) == head(config)


def test_the_models_and_an_empty_database_differ(engine: Engine) -> None:
    # The comparison itself can fail: against no schema it reports every table.
    added = {diff[1].name for diff in schema_differences(engine) if diff[0] == "add_table"}
    assert added == set(Base.metadata.tables)


def test_indexes_and_unique_constraints_are_migrated(config: Config, engine: Engine) -> None:
    command.upgrade(config, "head")
    inspector = inspect(engine)
    indexed = {
        table: {tuple(index["column_names"]) for index in inspector.get_indexes(table)}
        for table in ("sessions", "refresh_tokens")
    }
    assert indexed == {"sessions": {("user_id",)}, "refresh_tokens": {("sid",)}}
    unique = {tuple(c["column_names"]) for c in inspector.get_unique_constraints("users")}
    assert ("username",) in unique


def test_downgrade_base_then_upgrade_head(config: Config, engine: Engine) -> None:
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    assert tables(engine) - {VERSION_TABLE} == set()
    assert current_revision(engine) is None
    command.upgrade(config, "head")
    assert schema_differences(engine) == []
    assert current_revision(engine) == head(config)


def test_the_app_upgrade_path_is_idempotent(database_url: str, config: Config) -> None:
    # migrations.upgrade is what the app's lifespan and `hopshop-auth migrate` run.
    engine = create_db_engine(database_url)
    try:
        upgrade(engine)
        upgrade(engine)
        assert schema_differences(engine) == []
        assert current_revision(engine) == head(config)
    finally:
        engine.dispose()


def test_offline_sql_generation_works(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    command.upgrade(config, "head", sql=True)
    sql = capsys.readouterr().out
    for table in Base.metadata.tables:
        assert f"CREATE TABLE {table}" in sql, table
