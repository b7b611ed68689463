"""The order service's application factory.

Run with ``uvicorn --factory order_service.app:create_app``. The lifespan
builds everything (engine, HTTP clients, token clients, Kafka workers) and
starts the background work: the outbox relay, the payment-event consumer and
the expiry job, each switchable by a setting.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI
from hopauth import (
    ClientCredentials,
    ClientCredentialsAuth,
    JWKSCache,
    TokenCache,
    TokenEndpoint,
    TokenExchanger,
)
from hopauth.fastapi import install_problem_handlers as install_auth_problem_handlers
from hopauth.redis_cache import RedisTokenCache
from hopkit import db, dpop, forwarding, health, outgoing, receiving
from hopkit.bodylimit import DEFAULT_MAX_BYTES, BodyLimitMiddleware
from hopkit.consumer import EventConsumer
from hopkit.docs import install_docs
from hopkit.health import Check, database_check, kafka_check, redis_check
from hopkit.logs import configure_logging
from hopkit.nostore import NoStoreMiddleware
from hopkit.outbox import OutboxRelay
from hopkit.problems import install_problem_handlers
from hopkit.tracing import TracingMiddleware

from .api import router
from .billing import AUDIENCE as BILLING_AUDIENCE
from .billing import SCHEDULER_SCOPES as SCHEDULER_BILLING_SCOPES
from .billing import SCOPES as BILLING_SCOPES
from .billing import Billing
from .config import AUDIENCE, CLIENT_ID, CONSUMER_GROUP, SCHEDULER_CLIENT_ID, Settings
from .expiry import ExpiryScheduler
from .forwarding import WEAKENED
from .hops import HopTokens
from .inventory import Inventory, add_trace_headers
from .payments import TOPICS, payment_handler

log = logging.getLogger(__name__)

MIGRATIONS = "order_service:alembic"
SETTLE_SCOPES = ("inventory:release",)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.json_logs:
            configure_logging("order", settings.log_level)
        async with AsyncExitStack() as resources:
            engine = db.create_engine(settings.database_url)
            resources.push_async_callback(engine.dispose)
            if settings.auto_migrate:
                await db.upgrade(engine, MIGRATIONS)
            sessions = db.session_factory(engine)

            # Its token exchanges belong to the request that needed them: trace them with it.
            auth_http = await resources.enter_async_context(
                outgoing.async_client(timeout=5.0, event_hooks={"request": [add_trace_headers]})
            )
            keys = JWKSCache(issuer=settings.issuer, http=auth_http, ttl=settings.jwks_ttl)
            await keys.warm()
            checks: dict[str, Check] = {"database": database_check(engine)}
            token_cache: TokenCache | None = None
            store = receiving.connect_redis(settings.redis_url, resources)
            if store is not None:
                token_cache = RedisTokenCache(store)
                checks["redis"] = redis_check(store)
            elif settings.is_production:
                log.warning("HOPSHOP_REDIS_URL is not set: revoked sessions are not refused")

            # DPoP (RFC 9449): every caller is a service, so only bound tokens are accepted.
            dpop_keys = dpop.install(app, settings, store, required=True, origins=settings.origins)
            # Sending side: one token endpoint client (and DPoP key) per identity this
            # process acts as.
            order_endpoint = TokenEndpoint(
                token_url=settings.token_url,
                client_id=CLIENT_ID,
                client_secret=settings.order_secret,
                http=auth_http,
                dpop_key=dpop_keys.for_client(CLIENT_ID),
            )
            scheduler_endpoint = TokenEndpoint(
                token_url=settings.token_url,
                client_id=SCHEDULER_CLIENT_ID,
                client_secret=settings.scheduler_secret,
                http=auth_http,
                dpop_key=dpop_keys.for_client(SCHEDULER_CLIENT_ID),
            )
            exchanger = TokenExchanger(order_endpoint)
            order_credentials = ClientCredentials(
                order_endpoint, audience="inventory", scopes=SETTLE_SCOPES, cache=token_cache
            )
            scheduler_credentials = ClientCredentials(
                scheduler_endpoint, audience="inventory", scopes=SETTLE_SCOPES, cache=token_cache
            )
            inventory_http = await resources.enter_async_context(
                outgoing.async_client(
                    base_url=settings.inventory_url,
                    timeout=settings.inventory_timeout,
                    event_hooks={"request": [add_trace_headers]},
                )
            )
            inventory = Inventory(
                inventory_http,
                settle=ClientCredentialsAuth(order_credentials),
                hops=HopTokens(settings.propagation, exchanger),
            )

            app.state.settings = settings
            app.state.db_engine = engine
            app.state.db_sessions = sessions
            app.state.hopauth_validator = receiving.access_token_validator(
                settings, AUDIENCE, keys, store
            )
            app.state.inventory = inventory
            app.state.token_exchanger = exchanger
            app.state.readiness_checks = checks

            # Background work: stopped (in reverse) before the clients above are closed.
            bootstrap = settings.kafka_bootstrap
            if bootstrap:
                checks["kafka"] = kafka_check(bootstrap)
                if settings.run_outbox_relay:
                    relay = OutboxRelay(
                        bootstrap,
                        sessions,
                        poll_interval=settings.outbox_poll_interval,
                        client_id="order-outbox-relay",
                    )
                    await relay.start()
                    resources.push_async_callback(relay.stop)
                    app.state.outbox_relay = relay
                if settings.run_payment_consumer:
                    # Each payment event is checked with billing before it changes anything
                    # (payments.py), with order's own token from the same token endpoint.
                    billing_http = await resources.enter_async_context(
                        _billing_client(settings, order_endpoint, BILLING_SCOPES, token_cache)
                    )
                    session_timeout = settings.consumer_session_timeout_ms
                    consumer = EventConsumer(
                        bootstrap,
                        CONSUMER_GROUP,
                        TOPICS,
                        payment_handler(inventory, Billing(billing_http)),
                        sessions,
                        max_attempts=settings.consumer_max_attempts,
                        backoff=(0.5, 30.0),
                        consumer_options={
                            "session_timeout_ms": session_timeout,
                            "heartbeat_interval_ms": max(100, session_timeout // 5),
                        },
                    )
                    await consumer.start()
                    resources.push_async_callback(consumer.stop)
                    app.state.payment_consumer = consumer
            else:
                log.warning(
                    "HOPSHOP_KAFKA_BOOTSTRAP is not set: events stay in the outbox and "
                    "payment events are not consumed"
                )
            if settings.run_expiry_scheduler:
                # Billing, for an overdue order whose stock was sold (expiry.py): asked with
                # the job's own token, payments:verify only.
                scheduler_billing_http = await resources.enter_async_context(
                    _billing_client(
                        settings, scheduler_endpoint, SCHEDULER_BILLING_SCOPES, token_cache
                    )
                )
                scheduler = ExpiryScheduler(
                    sessions,
                    Inventory(inventory_http, settle=ClientCredentialsAuth(scheduler_credentials)),
                    Billing(scheduler_billing_http),
                    payment_timeout=settings.payment_timeout,
                    interval=settings.expiry_interval,
                    batch=settings.expiry_batch,
                )
                await scheduler.start()
                resources.push_async_callback(scheduler.stop)
                app.state.expiry_scheduler = scheduler

            log.info(
                "order service ready",
                extra={"issuer": settings.issuer, "env": settings.env.value},
            )
            yield

    app = FastAPI(
        title="hopshop order",
        description="Orders: place, list, get and cancel (customers, through the gateway), "
        "support and billing reads, payment events, and the expiry of unpaid orders.",
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
    forwarding.install(app, settings.propagation, service="order", weakened=WEAKENED)
    # Bodies are capped before FastAPI reads one (before any token check).
    app.add_middleware(BodyLimitMiddleware, max_bytes=DEFAULT_MAX_BYTES)
    app.add_middleware(NoStoreMiddleware)
    app.add_middleware(TracingMiddleware, access_log=settings.access_log)
    return app


def _billing_client(
    settings: Settings,
    endpoint: TokenEndpoint,
    scopes: tuple[str, ...],
    cache: TokenCache | None,
) -> httpx.AsyncClient:
    """Billing as ``endpoint``'s client calls it: its own token, for ``scopes`` only."""
    credentials = ClientCredentials(endpoint, audience=BILLING_AUDIENCE, scopes=scopes, cache=cache)
    return outgoing.async_client(
        base_url=settings.billing_url,
        timeout=settings.billing_timeout,
        auth=ClientCredentialsAuth(credentials),
        event_hooks={"request": [add_trace_headers]},
        headers={"Accept": "application/json"},
        follow_redirects=False,
    )
