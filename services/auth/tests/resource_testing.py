"""A resource server built from hopauth alone, as a service would copy it, and its token client.

The library's end-to-end tests add their routes to :func:`resource_app` and
call it with hopauth's own clients (:func:`token_endpoint`), against the real
issuer and the real valkey.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI
from hopauth import AccessTokenValidator, DPoPKey, DPoPProofValidator, JWKSCache, TokenEndpoint
from hopauth.fastapi import install_problem_handlers
from hopauth.redis_replay import RedisReplayCache
from hopauth.redis_revocation import RedisRevocationChecker


def resource_app(
    issuer: str,
    redis_url: str,
    audience: str,
    *,
    revocation: bool = False,
    dpop_origin: str | None = None,
) -> FastAPI:
    """An app that takes ``audience``'s access tokens (RFC 9068) from ``issuer``; no routes yet.

    The issuer's keys are fetched at start-up. ``revocation`` checks each token
    against the revoked logins in valkey. With ``dpop_origin`` (where the app is
    reached) it requires DPoP-bound tokens with a fresh proof each for that
    origin (RFC 9449 §7.1), the proofs' ``jti`` kept in valkey (§11.1).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=5) as http:
            store = aioredis.Redis.from_url(redis_url, socket_timeout=1)
            keys = JWKSCache(issuer=issuer, http=http)
            await keys.prefetch()
            app.state.hopauth_validator = AccessTokenValidator(
                issuer=issuer,
                audience=audience,
                keys=keys,
                revocation=RedisRevocationChecker(store) if revocation else None,
            )
            if dpop_origin is not None:
                app.state.hopauth_dpop = DPoPProofValidator(
                    replay_cache=RedisReplayCache(store), origins=[dpop_origin]
                )
                app.state.hopauth_require_dpop = True
            yield
            await store.aclose()

    app = FastAPI(lifespan=lifespan)
    install_problem_handlers(app)
    return app


def token_endpoint(
    issuer: str, http: httpx.AsyncClient, client_id: str, key: DPoPKey | None = None
) -> TokenEndpoint:
    """hopauth's client of the issuer's token endpoint as ``client_id`` (its dev secret).

    With ``key`` every token it obtains is bound to that key (RFC 9449 §5).
    """
    return TokenEndpoint(
        token_url=f"{issuer}/token",
        client_id=client_id,
        client_secret=f"{client_id}-dev-secret",
        http=http,
        dpop_key=key,
    )
