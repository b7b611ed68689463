"""The gateway's application factory: the only public API, and the web UI.

Run with ``uvicorn --factory gateway_service.app:create_app --port 8000``.
The gateway has no database: its state is the issuer's keys, one token
exchanger (the exchange cache), and Redis (revoked sessions, rate limits,
its own client-credentials token, broadcasts per staff member).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI
from hopauth import (
    ClientCredentials,
    JWKSCache,
    TokenEndpoint,
    TokenExchanger,
)
from hopauth.fastapi import install_problem_handlers as install_auth_problem_handlers
from hopauth.redis_cache import RedisTokenCache
from hopkit import dpop, forwarding, health, outgoing, receiving
from hopkit.bodylimit import BodyLimitMiddleware
from hopkit.docs import install_docs
from hopkit.health import Check, redis_check
from hopkit.logs import configure_logging
from hopkit.nostore import NoStoreMiddleware
from hopkit.problems import install_problem_handlers
from hopkit.tracing import TracingMiddleware

from . import stats, ui
from .api import router
from .config import AUDIENCE, Settings
from .downstream import Downstream, trace_headers
from .forwarding import WEAKENED
from .hops import HopTokens
from .ratelimit import BROADCAST_PREFIX, RateLimiter
from .service import NOTIFICATION, Gateway

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.json_logs:
            configure_logging("gateway", settings.log_level)
        async with AsyncExitStack() as resources:
            # One pooled client for the issuer and every service; each request carries
            # the request id and trace context on.
            http = await resources.enter_async_context(
                outgoing.async_client(
                    timeout=httpx.Timeout(settings.downstream_timeout),
                    # And as a whole: a peer dripping bytes must not outlast the 504 promise.
                    total_timeout=settings.downstream_timeout,
                    event_hooks={"request": [trace_headers]},
                )
            )
            keys = JWKSCache(issuer=settings.issuer, http=http, ttl=settings.jwks_ttl)
            await keys.warm()
            checks: dict[str, Check] = {}
            store = receiving.connect_redis(settings.redis_url, resources)
            if store is not None:
                checks["redis"] = redis_check(store)
            else:
                log.warning(
                    "HOPSHOP_REDIS_URL is not set: no rate limit, revoked sessions are not refused"
                )

            # DPoP (RFC 9449): users' bearer tokens arrive here, so proofs are checked for
            # bound tokens only; every token the gateway obtains is bound to its key.
            dpop_keys = dpop.install(app, settings, store, required=False, origins=settings.origins)
            endpoint = TokenEndpoint(
                token_url=settings.token_url,
                client_id=settings.client_id,
                client_secret=settings.client_secret.get_secret_value(),
                http=http,
                dpop_key=dpop_keys.for_client(settings.client_id),
            )
            hops = HopTokens(
                settings.propagation,
                TokenExchanger(endpoint),
                ClientCredentials(
                    endpoint,
                    audience=NOTIFICATION,
                    scopes=["notifications:broadcast"],
                    cache=RedisTokenCache(store) if store is not None else None,
                ),
            )
            app.state.settings = settings
            app.state.hopauth_validator = receiving.access_token_validator(
                settings, AUDIENCE, keys, store
            )
            app.state.gateway = Gateway(hops, Downstream(http, settings.service_urls()))
            app.state.rate_limiter = RateLimiter(
                store, limit=settings.rate_limit, window=settings.rate_window
            )
            app.state.broadcast_quota = RateLimiter(
                store,
                limit=settings.broadcast_quota,
                window=settings.broadcast_window,
                prefix=BROADCAST_PREFIX,
            )
            app.state.readiness_checks = checks
            log.info(
                "gateway ready",
                extra={
                    "issuer": settings.issuer,
                    "env": settings.env.value,
                    "propagation": settings.propagation.value,
                },
            )
            yield

    app = FastAPI(
        title="hopshop gateway",
        description="The only public API of hopshop. Every call with a user behind it needs "
        "a user token for audience `gateway` from the web client; the gateway exchanges it "
        "for a token made for the one service it calls next (RFC 8693).",
        version="0.1.0",
        docs_url=None,  # hopkit.docs serves /docs without a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    install_docs(app)
    app.include_router(router)
    app.include_router(ui.router)
    app.include_router(stats.router)
    app.include_router(health.router)
    install_problem_handlers(app)
    install_auth_problem_handlers(app)
    forwarding.install(app, settings.propagation, service="gateway", weakened=WEAKENED)
    # The public edge: bodies are capped before FastAPI reads one (before any token check).
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(NoStoreMiddleware)
    app.add_middleware(TracingMiddleware, access_log=settings.access_log)
    return app
