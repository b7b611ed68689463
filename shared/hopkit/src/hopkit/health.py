"""``/healthz`` (the process answers) and ``/readyz`` (its dependencies answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import JSONResponse

Check = Callable[[], Awaitable[None]]
"""A readiness check: returns when the dependency answers, raises when it does not."""

CHECK_TIMEOUT = 2.0


class Pingable(Protocol):
    """A Redis client (redis.asyncio.Redis): hopkit needs nothing more of it."""

    def ping(self) -> Awaitable[Any]: ...


def database_check(engine: AsyncEngine) -> Check:
    async def check() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return check


def redis_check(client: Pingable) -> Check:
    async def check() -> None:
        await client.ping()

    return check


def kafka_check(bootstrap: str) -> Check:
    """Ready when one of the bootstrap servers accepts a connection.

    A TCP connection, not a Kafka request: cheap enough for a probe, and the
    consumers and the outbox relay report (and recover from) protocol trouble.
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


router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, Check] = getattr(request.app.state, "readiness_checks", {})
    results = await asyncio.gather(*(_run(check) for check in checks.values()))
    report = dict(zip(checks, results, strict=True))
    ready = all(result == "ok" for result in results)
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": report},
        status_code=200 if ready else 503,
    )


async def _run(check: Check) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except Exception:  # readiness reports a failure, it does not raise one
        return "unreachable"
    return "ok"
