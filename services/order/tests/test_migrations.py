"""The Alembic migrations build exactly the schema of order_service.models, and undo it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from hopkit.db import create_engine, upgrade
from order_service.app import MIGRATIONS
from order_testing import check_holds_backfill, differences
from sqlalchemy import inspect
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
    engine = create_engine(f"sqlite:///{tmp_path / 'order.db'}")
    try:
        await upgrade(engine, MIGRATIONS)
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
            assert await connection.run_sync(tables) == {
                "alembic_version",
                "orders",
                "order_items",
                "outbox",
                "processed_events",
                "holds",
                "customer_holds",
                "idempotency_keys",
            }
        await downgrade_to_base(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(tables) == {"alembic_version"}
        await upgrade(engine, MIGRATIONS)  # and back up again, as a redeploy would
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()


async def test_the_upgrade_counts_orders_already_unpaid(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'order.db'}")
    try:
        await check_holds_backfill(engine)
    finally:
        await engine.dispose()
