"""``/readyz`` checks: the database, Redis, and the Kafka broker the worker reads."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis
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
    """Ready when one of the bootstrap servers accepts a connection.

    A TCP connection, not a Kafka request: cheap enough for a probe, and the
    consumer reports (and recovers from) protocol-level trouble itself.
    """
    servers = [_host_port(server) for server in bootstrap.split(",") if server.strip()]

    async def check() -> None:
        for host, port in servers:
            try:
                _, writer = await asyncio.open_connection(host, port)
            except OSError:
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise ConnectionError("no Kafka bootstrap server accepts connections")

    return check


def _host_port(server: str) -> tuple[str, int]:
    host, _, port = server.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"HOPSHOP_KAFKA_BOOTSTRAP: {server.strip()!r} is not host:port")
    return host.strip("[]"), int(port)
