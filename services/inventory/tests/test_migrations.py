"""The Alembic migrations build exactly the schema of inventory_service.models, and undo it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from hopkit.db import create_engine, upgrade
from inventory_service.app import MIGRATIONS
from inventory_testing import differences
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def downgrade_to_base(engine: AsyncEngine) -> None:
    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", MIGRATIONS)
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    async with engine.begin() as connection:
        await connection.run_sync(run)


def test_one_head() -> None:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


async def test_upgrade_matches_models_and_downgrade_undoes_it(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'inventory.db'}")
    try:
        await upgrade(engine, MIGRATIONS)
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
            assert await connection.run_sync(tables) == {
                "alembic_version",
                "products",
                "stock",
                "reservations",
                "reservation_items",
            }
        await downgrade_to_base(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(tables) == {"alembic_version"}
        await upgrade(engine, MIGRATIONS)  # and back up again, as a redeploy would
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()


async def test_0002_leaves_existing_products_uncapped(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'inventory.db'}")

    def upgrade_to(revision: str) -> Callable[[Connection], None]:
        def run(connection: Connection) -> None:
            config = Config()
            config.set_main_option("script_location", MIGRATIONS)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

        return run

    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade_to("0001"))
            await connection.execute(
                text(
                    "INSERT INTO products (id, sku, name, price_cents, currency) "
                    "VALUES (1, 'OLD-1', 'Old product', 100, 'EUR')"
                )
            )
        async with engine.begin() as connection:
            await connection.run_sync(upgrade_to("0002"))
            row = (
                await connection.execute(text("SELECT sku, max_held_per_customer FROM products"))
            ).one()
        assert tuple(row) == ("OLD-1", None)
    finally:
        await engine.dispose()
