"""The inventory service's application factory.

Run with ``uvicorn --factory inventory_service.app:create_app``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from hopauth import JWKSCache
from hopauth.fastapi import install_problem_handlers as install_auth_problem_handlers
from hopkit import db, dpop, forwarding, health, outgoing, receiving
from hopkit.bodylimit import DEFAULT_MAX_BYTES, BodyLimitMiddleware
from hopkit.docs import install_docs
from hopkit.health import Check, database_check, redis_check
from hopkit.logs import configure_logging
from hopkit.nostore import NoStoreMiddleware
from hopkit.problems import install_problem_handlers
from hopkit.tracing import TracingMiddleware

from .api import router
from .config import AUDIENCE, Settings
from .forwarding import WEAKENED
from .seed import seed_demo_products

log = logging.getLogger(__name__)

MIGRATIONS = "inventory_service:alembic"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.json_logs:
            configure_logging("inventory", settings.log_level)
        async with AsyncExitStack() as resources:
            engine = db.create_engine(settings.database_url)
            resources.push_async_callback(engine.dispose)
            if settings.auto_migrate:
                await db.upgrade(engine, MIGRATIONS)
            sessions = db.session_factory(engine)
            if settings.should_seed:
                await seed_demo_products(sessions, stock=settings.seed_stock)

            http = await resources.enter_async_context(outgoing.async_client(timeout=5.0))
            keys = JWKSCache(issuer=settings.issuer, http=http, ttl=settings.jwks_ttl)
            await keys.warm()
            checks: dict[str, Check] = {"database": database_check(engine)}
            store = receiving.connect_redis(settings.redis_url, resources)
            if store is not None:
                checks["redis"] = redis_check(store)
            elif settings.is_production:
                log.warning("HOPSHOP_REDIS_URL is not set: revoked sessions are not refused")

            app.state.settings = settings
            app.state.db_engine = engine
            app.state.db_sessions = sessions
            app.state.hopauth_validator = receiving.access_token_validator(
                settings, AUDIENCE, keys, store
            )
            app.state.readiness_checks = checks
            # DPoP (RFC 9449): every caller is a service (order, its scheduler), so only
            # bound tokens are accepted. Inventory calls no one: its keys go unused.
            dpop.install(app, settings, store, required=True, origins=settings.origins)
            log.info(
                "inventory service ready",
                extra={"issuer": settings.issuer, "env": settings.env.value},
            )
            yield

    app = FastAPI(
        title="hopshop inventory",
        description="Products (public catalogue), stock and reservations. Reservations are "
        "internal: only the order service (and its scheduler, to release) may touch them.",
        version="0.1.0",
        docs_url=None,  # hopkit.docs serves /docs without a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    install_docs(app)
    app.include_router(router)
    app.include_router(health.router)
    install_problem_handlers(app)
    install_auth_problem_handlers(app)
    forwarding.install(app, settings.propagation, service="inventory", weakened=WEAKENED)
    # Bodies are capped before FastAPI reads one (before any token check).
    app.add_middleware(BodyLimitMiddleware, max_bytes=DEFAULT_MAX_BYTES)
    app.add_middleware(NoStoreMiddleware)
    app.add_middleware(TracingMiddleware, access_log=settings.access_log)
    return app
