"""The auth service's user directory, as the notification worker sees it.

``GET {auth}/users/{id}`` with the worker's own client-credentials token
(client ``notification-worker``, audience ``auth``, scope ``users:read``):
an event carries no user token, and none is needed to look a customer up.
The token is cached (in Redis when there is one, so replicas share it) and
renewed by hopauth; this module never sees or logs it. The contacts found are
cached in memory for a short while (:mod:`notification_service.contacts`).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx
import redis.asyncio as redis
from hopauth import (
    ClientCredentials,
    ClientCredentialsAuth,
    DPoPKey,
    HopAuthError,
    TokenEndpoint,
)
from hopauth.redis_cache import RedisTokenCache
from hopkit import outgoing
from hopkit.events import DependencyUnavailable
from hopkit.tracing import outgoing_headers
from pydantic import BaseModel, ValidationError

from .config import DIRECTORY_AUDIENCE, DIRECTORY_SCOPE, WORKER_CLIENT_ID, Settings
from .contacts import Contact, ContactCache

log = logging.getLogger(__name__)


class DirectoryUnavailable(DependencyUnavailable):
    """The directory gave no usable answer this time (down, refused us, odd body): retry."""


class _UserOut(BaseModel):
    id: str
    email: str
    display_name: str


class UserDirectory:
    """Looks customers up; ``http`` has the auth base URL and the worker's token auth.

    With ``cache``, a contact found is remembered for its TTL and not asked for
    again meanwhile; "no such user" and failures are never remembered.
    """

    def __init__(self, http: httpx.AsyncClient, cache: ContactCache | None = None) -> None:
        self._http = http
        self._cache = cache

    async def contact(self, user_id: str) -> Contact | None:
        """The user's contact details, or None when the directory has no such user."""
        if self._cache is not None:
            cached = self._cache.get(user_id)
            if cached is not None:
                return cached
        found = await self._look_up(user_id)
        if found is not None and self._cache is not None:
            self._cache.put(found)
        return found

    async def _look_up(self, user_id: str) -> Contact | None:
        try:
            response = await self._http.get(
                f"/users/{quote(user_id, safe='')}", headers=outgoing_headers()
            )
        except (httpx.HTTPError, HopAuthError) as exc:
            # HopAuthError: the issuer would not give us a token (its reason is logged by
            # hopauth, without secrets). Either way the exception text stays out of here.
            raise DirectoryUnavailable(
                f"user directory unreachable: {type(exc).__name__}"
            ) from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            # 401 after hopauth's one retry with a fresh token, 403, 5xx: not ours to fix here.
            raise DirectoryUnavailable(f"user directory answered {response.status_code}")
        try:
            user = _UserOut.model_validate_json(response.content)
        except ValidationError:
            raise DirectoryUnavailable(
                "user directory answered 200 with an unusable body"
            ) from None
        if user.id != user_id or "@" not in user.email:
            raise DirectoryUnavailable("user directory answered for another user or no email")
        return Contact(user_id=user.id, email=user.email, display_name=user.display_name)


def worker_endpoint(
    settings: Settings, http: httpx.AsyncClient, dpop_key: DPoPKey | None = None
) -> TokenEndpoint:
    """The token endpoint as the worker (``notification-worker``) uses it, for every audience.

    ``http`` (no auth of its own) talks to the token endpoint. With ``dpop_key``
    each token is bound to it and each call carries a fresh proof (RFC 9449 §7.1).
    """
    return TokenEndpoint(
        token_url=f"{settings.auth_base_url}/token",
        client_id=WORKER_CLIENT_ID,
        client_secret=settings.worker_client_secret.get_secret_value(),
        http=http,
        dpop_key=dpop_key,
    )


def directory_client(
    settings: Settings,
    http: httpx.AsyncClient,
    store: redis.Redis | None,
    dpop_key: DPoPKey | None = None,
    *,
    endpoint: TokenEndpoint | None = None,
) -> httpx.AsyncClient:
    """An HTTP client for the directory that sends the worker's client-credentials token.

    The token comes from ``endpoint``, or one :func:`worker_endpoint` makes from
    ``http`` and ``dpop_key``. The caller closes the returned client.
    """
    endpoint = endpoint or worker_endpoint(settings, http, dpop_key)
    credentials = ClientCredentials(
        endpoint,
        audience=DIRECTORY_AUDIENCE,
        scopes=[DIRECTORY_SCOPE],
        cache=RedisTokenCache(store) if store is not None else None,
    )
    return outgoing.async_client(
        base_url=settings.auth_base_url,
        auth=ClientCredentialsAuth(credentials),
        timeout=settings.directory_timeout,
    )
