"""Readiness checks for ``/readyz``: each returns when its dependency answers, raises if not."""

from __future__ import annotations

import redis.asyncio as redis
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from hopkit.health import Check
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


def database_check(engine: AsyncEngine) -> Check:
    async def check() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return check


def redis_check(client: redis.Redis) -> Check:
    async def check() -> None:
        await client.ping()

    return check


def kafka_check(bootstrap: str) -> Check:
    """The broker answers a metadata request (what the consumer and the relay need first)."""

    async def check() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=1_500)
        try:
            await admin.start()
            await admin.list_topics()
        finally:
            await admin.close()

    return check
