"""The order service, as billing's worker sees it: where the authoritative order comes from.

The worker calls ``GET /internal/orders/{id}`` with its own client-credentials
token (client ``billing-worker``, aud ``order``, ``orders:read``): no user is
behind a Kafka event, so there is no user token to exchange, and an event
never carries one. The answer, not the event, says what to charge whom.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx
from hopauth import (
    ClientCredentials,
    ClientCredentialsAuth,
    HopAuthError,
    TokenCache,
    TokenEndpoint,
)
from hopkit import outgoing
from hopkit.events import DependencyUnavailable
from hopkit.tracing import outgoing_headers
from pydantic import ValidationError

from .schemas import Order

log = logging.getLogger(__name__)

ORDER_AUDIENCE = "order"
ORDER_SCOPES = ("orders:read",)
#: The problem the order service answers for an order it does not have. A 404 without it
#: (a wrong base URL, a route that moved) is not proof the order does not exist.
ORDER_NOT_FOUND = "https://hopshop.example/problems/order-not-found"


class OrderServiceError(DependencyUnavailable):
    """The order service did not give an answer this time (down, refusing, erroring): retry.

    Nothing here is the event's fault, so the worker waits it out rather than
    dead-letter a good order: a refusal (401/403 after hopauth's retry) or no
    token for the worker is a deployment's fault that every event would meet.
    An answer that is not an order we can charge is :class:`UnusableOrder`.
    """


class UnusableOrder(ValueError):
    """The order service answered with something that is not an order we can charge."""


def order_credentials(
    endpoint: TokenEndpoint, cache: TokenCache | None = None
) -> ClientCredentials:
    """The worker's token for the order service, kept fresh (and shared through ``cache``)."""
    return ClientCredentials(endpoint, audience=ORDER_AUDIENCE, scopes=ORDER_SCOPES, cache=cache)


def order_http(base_url: str, credentials: ClientCredentials, timeout: float) -> httpx.AsyncClient:
    """An HTTP client for the order service that sends the worker's token on every call."""
    return outgoing.async_client(
        base_url=base_url,
        auth=ClientCredentialsAuth(credentials),
        timeout=timeout,
        headers={"Accept": "application/json"},
        follow_redirects=False,
    )


class OrderClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def fetch(self, order_id: str) -> Order | None:
        """The order as the order service has it now; None if it has no such order.

        ``order_id`` was checked against :data:`~billing_service.schemas.ORDER_ID_PATTERN`
        by the caller, and is quoted anyway: an id from a message must never
        steer the worker's token to another path.
        """
        try:
            response = await self._http.get(
                f"/internal/orders/{quote(order_id, safe='')}", headers=outgoing_headers()
            )
        except httpx.HTTPError as exc:  # order, or the auth server for our token, is away
            raise OrderServiceError(f"order service unreachable: {type(exc).__name__}") from None
        except HopAuthError as exc:
            # No token for the worker: the issuer refused it or answered 5xx (hopauth logged
            # why, without secrets). Either way not the event's fault, and its text stays out.
            raise OrderServiceError(
                f"no token for the order service: {type(exc).__name__}"
            ) from None
        if response.status_code == 404 and _problem_type(response) == ORDER_NOT_FOUND:
            return None
        if response.status_code != 200:
            raise OrderServiceError(f"order service answered {response.status_code}")
        try:
            order = Order.model_validate_json(response.content)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
            raise UnusableOrder(
                f"order service answer is not an order: {', '.join(fields)}"
            ) from None
        if order.id != order_id:
            raise UnusableOrder("order service answered with another order")
        return order


def _problem_type(response: httpx.Response) -> str | None:
    if response.headers.get("content-type", "").split(";")[0] != "application/problem+json":
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    kind = body.get("type") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) else None
