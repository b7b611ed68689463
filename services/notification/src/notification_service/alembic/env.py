"""Alembic environment: runs on the connection handed in by ``hopkit.db.upgrade``, or on the URL.

``hopkit.db.upgrade`` (start-up) puts a synchronous connection of the service's
async engine in ``config.attributes["connection"]``. From the command line,
``sqlalchemy.url`` is used with the same async driver the service uses.
"""

from __future__ import annotations

import asyncio

from alembic import context
from hopkit.db import create_engine
from sqlalchemy.engine import Connection

from notification_service.models import Base

config = context.config
target_metadata = Base.metadata


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_url(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_migrate)
    finally:
        await engine.dispose()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    asyncio.run(_migrate_url(config.get_main_option("sqlalchemy.url") or ""))


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run()
