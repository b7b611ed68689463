"""/healthz answers; /readyz reports each dependency and fails when one does."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from hopkit.health import router


async def ok() -> None:
    return None


async def down() -> None:
    raise ConnectionError("no answer")


async def get(checks: dict[str, object], path: str) -> httpx.Response:
    application = FastAPI()
    application.include_router(router)
    application.state.readiness_checks = checks
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_ready_when_every_check_passes() -> None:
    response = await get({"database": ok, "redis": ok}, "/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


async def test_not_ready_when_a_check_fails() -> None:
    response = await get({"database": ok, "kafka": down}, "/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "kafka": "unreachable"}


async def test_alive_whatever_the_dependencies() -> None:
    assert (await get({"kafka": down}, "/healthz")).status_code == 200
