"""A protected FastAPI endpoint for ``bench_dpop.py``: hopauth's ``Requires``, DPoP switchable.

``GET /orders/{order_id}`` needs an access token for audience ``order`` with ``orders:read``,
checked by hopauth's ``AccessTokenValidator`` (keys from the issuer's JWKS, fetched once at
start-up). With ``DPOP_BENCH_DPOP=on`` the DPoP switch is on (``app.state.hopauth_dpop``, replay
cache in Redis at ``DPOP_BENCH_REDIS_URL``): a bound token then needs a valid proof per request,
and an unbound bearer token still passes (``hopauth_require_dpop`` stays off), so one server
serves both the bearer and the DPoP scenario. With ``off``, bound tokens are refused.
``DPOP_BENCH_ORIGIN`` is where the app is reached (default ``http://127.0.0.1:8002``): the
origin proofs must name (RFC 9449 §4.3 point 9).

    DPOP_BENCH_ISSUER=http://127.0.0.1:8001 DPOP_BENCH_REDIS_URL=redis://127.0.0.1:6379/0 \\
        uv run python -m uvicorn --factory dpop_app:create_app --app-dir bench --port 8002
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
import redis.asyncio as aioredis
from fastapi import Depends, FastAPI
from hopauth import AccessTokenValidator, DPoPProofValidator, JWKSCache, Principal
from hopauth.fastapi import Requires, install_problem_handlers
from hopauth.redis_replay import RedisReplayCache


def create_app() -> FastAPI:
    issuer = os.environ["DPOP_BENCH_ISSUER"]
    redis_url = os.environ.get("DPOP_BENCH_REDIS_URL")
    dpop_on = os.environ.get("DPOP_BENCH_DPOP", "on") == "on"
    origin = os.environ.get("DPOP_BENCH_ORIGIN", "http://127.0.0.1:8002")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=5) as http:
            keys = JWKSCache(issuer=issuer, http=http)
            await keys.prefetch()
            app.state.hopauth_validator = AccessTokenValidator(
                issuer=issuer, audience="order", keys=keys
            )
            store = (
                aioredis.Redis.from_url(redis_url, socket_timeout=1)
                if dpop_on and redis_url
                else None
            )
            if store is not None:
                app.state.hopauth_dpop = DPoPProofValidator(
                    replay_cache=RedisReplayCache(store), origins=[origin]
                )
            try:
                yield
            finally:
                if store is not None:
                    await store.aclose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    install_problem_handlers(app)

    @app.get("/orders/{order_id}")
    async def get_order(
        order_id: str, principal: Annotated[Principal, Depends(Requires("orders:read"))]
    ) -> dict[str, str | None]:
        return {"id": order_id, "owner": principal.subject, "jkt": principal.confirmation_jkt}

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app
