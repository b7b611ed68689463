"""The notification service's application factory.

Run with ``uvicorn --factory notification_service.app:create_app``. The Kafka
worker runs inside the same process, started and stopped by the lifespan.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import redis.asyncio as redis
from fastapi import FastAPI
from hopauth import JWKSCache
from hopauth.fastapi import install_problem_handlers as install_auth_problem_handlers
from hopkit import db, dpop, forwarding, health, outgoing, receiving
from hopkit.bodylimit import DEFAULT_MAX_BYTES, BodyLimitMiddleware
from hopkit.docs import install_docs
from hopkit.health import Check, database_check, kafka_check, redis_check
from hopkit.logs import configure_logging
from hopkit.nostore import NoStoreMiddleware
from hopkit.problems import install_problem_handlers
from hopkit.tracing import TracingMiddleware
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .api import router
from .config import AUDIENCE, WORKER_CLIENT_ID, Settings
from .contacts import ContactCache
from .directory import UserDirectory, directory_client, worker_endpoint
from .forwarding import WEAKENED
from .owners import Owners, owner_clients
from .worker import NotificationWorker

log = logging.getLogger(__name__)

MIGRATIONS = "notification_service:alembic"


async def _start_worker(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    store: redis.Redis | None,
    resources: AsyncExitStack,
    dpop_keys: dpop.ClientKeys,
) -> NotificationWorker:
    # One token endpoint client (and DPoP key) for every token the worker asks for.
    endpoint = worker_endpoint(settings, http, dpop_keys.for_client(WORKER_CLIENT_ID))
    directory_http = await resources.enter_async_context(
        directory_client(settings, http, store, endpoint=endpoint)
    )
    orders_http, billing_http = owner_clients(settings, endpoint, store)
    await resources.enter_async_context(orders_http)
    await resources.enter_async_context(billing_http)
    owners = Owners(orders_http, billing_http)
    # Found contacts are reused for NOTIFICATION_CONTACT_TTL seconds: an order's two events
    # about one customer then cost one directory call (notification_service.contacts).
    directory = UserDirectory(directory_http, ContactCache(settings.contact_ttl))
    worker = NotificationWorker(settings, sessions, directory, owners)
    # Stops before the directory client and the database go (the exit stack is LIFO).
    resources.push_async_callback(worker.stop)
    await worker.start()
    return worker


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.json_logs:
            configure_logging("notification", settings.log_level)
        async with AsyncExitStack() as resources:
            engine = db.create_engine(settings.database_url)
            resources.push_async_callback(engine.dispose)
            if settings.auto_migrate:
                await db.upgrade(engine, MIGRATIONS)
            sessions = db.session_factory(engine)

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
            # DPoP (RFC 9449): every caller is a service (gateway, with users' exchanged
            # tokens or its own), so only bound tokens are accepted.
            dpop_keys = dpop.install(app, settings, store, required=True, origins=settings.origins)
            app.state.worker = None
            if settings.worker_enabled and settings.kafka_bootstrap:
                app.state.worker = await _start_worker(
                    settings, sessions, http, store, resources, dpop_keys
                )
                checks["kafka"] = kafka_check(settings.kafka_bootstrap)
            app.state.readiness_checks = checks
            log.info(
                "notification service ready",
                extra={
                    "issuer": settings.issuer,
                    "env": settings.env.value,
                    "worker": app.state.worker is not None,
                },
            )
            yield

    app = FastAPI(
        title="hopshop notification",
        description="Customers' notifications (written by a Kafka worker from order and "
        "payment events) and support broadcasts (from the gateway, with no user context).",
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
    forwarding.install(app, settings.propagation, service="notification", weakened=WEAKENED)
    # Bodies are capped before FastAPI reads one (before any token check).
    app.add_middleware(BodyLimitMiddleware, max_bytes=DEFAULT_MAX_BYTES)
    app.add_middleware(NoStoreMiddleware)
    app.add_middleware(TracingMiddleware, access_log=settings.access_log)
    return app
