"""The auth service's application factory: ``uvicorn --factory auth_service.app:create_app``."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import redis
import redis.asyncio as aioredis
from fastapi import FastAPI
from hopauth import AccessTokenValidator, DPoPProofValidator, MemoryReplayCache, ReplayCache
from hopauth.fastapi import install_problem_handlers as hopauth_problems
from hopauth.redis_replay import RedisReplayCache
from hopkit.docs import install_docs
from hopkit.logs import configure_logging
from hopkit.nostore import NoStoreMiddleware
from hopkit.tracing import TracingMiddleware
from sqlalchemy import Engine, text

from . import directory, realm
from .api import router, token
from .config import Settings
from .cors import BrowserCORSMiddleware
from .db import create_db_engine, create_session_factory
from .errors import install_error_handlers
from .keys import KeyStore
from .login_throttle import Limits, LoginThrottle, MemoryLoginThrottle, RedisLoginThrottle
from .migrations import upgrade
from .oauth import dpop
from .oauth.authorization_code import AuthorizationCodeGrant, S256CodeChallenge
from .oauth.client_credentials import ClientCredentialsGrant
from .oauth.clients import RegisteredClient
from .oauth.refresh_token import RefreshTokenGrant
from .oauth.rfc7009 import RevocationEndpoint
from .oauth.rfc7662 import IntrospectionEndpoint
from .oauth.rfc8693 import TokenExchangeGrant
from .oauth.server import HopAuthorizationServer, ServerContext
from .policy import Policy, load_policy
from .redirect_uris import add_redirect_uris
from .sessions import SessionRevoker
from .tokens import LEEWAY_SECONDS, AccessTokens

log = logging.getLogger(__name__)


def build_server(
    context: ServerContext, clients: dict[str, RegisteredClient]
) -> HopAuthorizationServer:
    server = HopAuthorizationServer(context, clients)
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_grant(TokenExchangeGrant)
    server.register_endpoint(IntrospectionEndpoint)
    server.register_endpoint(RevocationEndpoint)
    return server


def _wire(
    app: FastAPI,
    settings: Settings,
    policy: Policy,
    engine: Engine,
    redis_client: redis.Redis | None,
    dpop_validator: DPoPProofValidator,
    replay_cache: ReplayCache,
) -> None:
    """Build the service's parts, in dependency order, onto app.state."""
    if settings.auto_migrate:
        upgrade(engine)
    factory = create_session_factory(engine)
    if settings.seed_demo_realm:
        realm.seed_demo_realm(factory, policy, now=int(time.time()))
    clients = realm.load_clients(factory, policy)
    if settings.is_production:
        realm.refuse_demo_credentials(factory, clients)

    keys = KeyStore(
        factory, retention=settings.key_retention, reload_interval=settings.key_reload_interval
    )
    keys.load()
    sessions = SessionRevoker(
        factory, redis_client, marker_ttl=settings.user_token_ttl + LEEWAY_SECONDS
    )
    if redis_client is not None:
        sessions.republish_recent()
    context = ServerContext(
        settings=settings,
        policy=policy,
        db=factory,
        tokens=AccessTokens(issuer=settings.issuer, keys=keys),
        sessions=sessions,
        # The token endpoint records a proof's jti itself, once the grant is validated.
        dpop=DPoPProofValidator(
            replay_cache=dpop.RecordedLater(),
            algorithms=dpop.ALGORITHMS,
            max_age=dpop.MAX_AGE,
            leeway=dpop.LEEWAY,
            origins=settings.origins,
        ),
        dpop_replay=replay_cache,
    )
    app.state.keys = keys
    # The issuer is also a resource server for its user directory (audience "auth").
    app.state.hopauth_validator = AccessTokenValidator(
        issuer=settings.issuer, audience=directory.AUDIENCE, keys=directory.IssuerKeys(keys)
    )
    # ...and accepts DPoP-bound tokens there, with their proofs (RFC 9449 §7).
    app.state.hopauth_dpop = dpop_validator
    app.state.oauth_server = build_server(context, clients)
    app.state.readiness = partial(readiness, engine, redis_client)
    app.state.login_slots = asyncio.Semaphore(settings.login_concurrency)


def readiness(engine: Engine, redis_client: redis.Redis | None) -> dict[str, str]:
    """What /readyz reports: can the database and Redis be reached right now."""
    checks = {"database": "ok"}
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # readiness reports, it does not raise
        checks["database"] = "unreachable"
    if redis_client is not None:
        try:
            redis_client.ping()
            checks["redis"] = "ok"
        except redis.RedisError:
            checks["redis"] = "unreachable"
    return checks


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.json_logs:
            configure_logging("auth", settings.log_level)
        # Policy first: a bad file (or extra redirect URI) must stop start-up
        # before anything else happens.
        policy = add_redirect_uris(load_policy(settings.policy_file), settings.extra_redirect_uris)
        if settings.extra_redirect_uris:
            log.info(
                "extra redirect URIs registered",
                extra={"redirect_uris": settings.extra_redirect_uris},
            )
        engine = create_db_engine(settings.database_url)
        redis_client = (
            redis.Redis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
            if settings.redis_url
            else None
        )
        # DPoP proof jtis (RFC 9449 §11.1) and failed-login counts: shared by all
        # replicas through Redis when there is one. Both fail closed: while Redis
        # is down, proofs and logins are refused. Without Redis, a full
        # MemoryReplayCache (100,000 live jtis) refuses every new proof, so a
        # jti goes in only with a validated grant (/token) or a valid access token.
        replay_store = (
            aioredis.Redis.from_url(
                settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0
            )
            if settings.redis_url
            else None
        )
        replay_cache: ReplayCache = (
            RedisReplayCache(replay_store) if replay_store is not None else MemoryReplayCache()
        )
        # Proofs name this server by the URLs it is given, never by a Host header (RFC 9449 §4.3).
        dpop_validator = DPoPProofValidator(
            replay_cache=replay_cache,
            algorithms=dpop.ALGORITHMS,
            max_age=dpop.MAX_AGE,
            leeway=dpop.LEEWAY,
            origins=settings.origins,
        )
        login_limits = Limits(
            per_username=settings.login_max_failures,
            per_ip=settings.login_max_failures_per_ip,
            window=settings.login_failure_window,
        )
        login_throttle: LoginThrottle = (
            RedisLoginThrottle(replay_store, login_limits)
            if replay_store is not None
            else MemoryLoginThrottle(login_limits)
        )
        try:
            app.state.settings = settings
            app.state.login_throttle = login_throttle
            _wire(app, settings, policy, engine, redis_client, dpop_validator, replay_cache)
            # Everything built so far lives as long as the process: keep it out of
            # the garbage collector's way (fewer, cheaper full collections).
            gc.freeze()
            log.info(
                "auth service ready", extra={"issuer": settings.issuer, "env": settings.env.value}
            )
            yield
        finally:
            if redis_client is not None:
                redis_client.close()
            if replay_store is not None:
                await replay_store.aclose()
            engine.dispose()

    app = FastAPI(
        title="hopshop auth",
        description="OAuth 2 authorization server: code + PKCE, refresh, client credentials, "
        "token exchange (RFC 8693), introspection, revocation.",
        docs_url=None,  # hopkit.docs serves /docs without a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    install_docs(app)
    app.add_route("/token", token, methods=["POST"], include_in_schema=False)
    app.include_router(router)
    app.include_router(directory.router)
    install_error_handlers(app)
    hopauth_problems(app)
    if settings.cors_origins:
        # The web UI (a public client) redeems its code and refreshes from the browser.
        app.add_middleware(
            BrowserCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"],
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(NoStoreMiddleware)
    app.add_middleware(TracingMiddleware, access_log=settings.access_log)
    return app
