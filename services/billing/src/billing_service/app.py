"""The billing service's application factory.

Run with ``uvicorn --factory billing_service.app:create_app``. The Kafka
worker (consumer of ``order.placed`` and outbox relay) runs in the same
process, as background tasks of the lifespan, unless ``BILLING_WORKER=false``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import redis.asyncio as redis
from fastapi import FastAPI
from hopauth import JWKSCache, TokenEndpoint
from hopauth.fastapi import install_problem_handlers as install_auth_problem_handlers
from hopauth.redis_cache import RedisTokenCache
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
from .forwarding import WEAKENED
from .orders import OrderClient, order_credentials, order_http
from .provider import SimulatedProvider
from .worker import BillingWorker

log = logging.getLogger(__name__)

MIGRATIONS = "billing_service:alembic"


async def _start_worker(
    resources: AsyncExitStack,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    store: redis.Redis | None,
    dpop_keys: dpop.ClientKeys,
    provider: SimulatedProvider,
) -> BillingWorker:
    endpoint = TokenEndpoint(
        token_url=settings.resolved_token_url,
        client_id=WORKER_CLIENT_ID,
        client_secret=settings.worker_client_secret.get_secret_value(),
        http=http,
        dpop_key=dpop_keys.for_client(WORKER_CLIENT_ID),
    )
    # Replicas share one token for the order service through valkey, when there is one.
    credentials = order_credentials(endpoint, RedisTokenCache(store) if store else None)
    orders_http = await resources.enter_async_context(
        order_http(settings.order_url, credentials, settings.order_timeout)
    )
    worker = BillingWorker(settings, sessions, OrderClient(orders_http), provider)
    await worker.start()
    resources.push_async_callback(worker.stop)
    return worker


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.json_logs:
            configure_logging("billing", settings.log_level)
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
            if settings.kafka_bootstrap:
                checks["kafka"] = kafka_check(settings.kafka_bootstrap)

            app.state.settings = settings
            app.state.db_engine = engine
            app.state.db_sessions = sessions
            app.state.hopauth_validator = receiving.access_token_validator(
                settings, AUDIENCE, keys, store
            )
            app.state.readiness_checks = checks
            # One provider for the worker's charges and the API's refunds.
            app.state.provider = SimulatedProvider()
            # DPoP (RFC 9449): every caller is a service (gateway), so only bound tokens
            # are accepted.
            dpop_keys = dpop.install(app, settings, store, required=True, origins=settings.origins)
            app.state.worker = None
            if settings.runs_worker:
                app.state.worker = await _start_worker(
                    resources, settings, sessions, http, store, dpop_keys, app.state.provider
                )
            log.info(
                "billing service ready",
                extra={
                    "issuer": settings.issuer,
                    "env": settings.env.value,
                    "worker": settings.runs_worker,
                },
            )
            yield

    app = FastAPI(
        title="hopshop billing",
        description="Invoices, read by customers through the gateway. A Kafka worker in the "
        "same process charges placed orders (simulated provider) and emits payment events.",
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
    forwarding.install(app, settings.propagation, service="billing", weakened=WEAKENED)
    # Bodies are capped before FastAPI reads one (before any token check).
    app.add_middleware(BodyLimitMiddleware, max_bytes=DEFAULT_MAX_BYTES)
    app.add_middleware(NoStoreMiddleware)
    app.add_middleware(TracingMiddleware, access_log=settings.access_log)
    return app
