"""The owners of what an event claims, as the notification worker asks them before telling anyone.

Anyone who can write to Kafka can write an ``order.confirmed`` or a
``payment.succeeded`` with a customer's id in it, so no event is believed.
Before a customer is told anything, the service that owns the fact is asked,
with the worker's own client-credentials token (client
``notification-worker``; no user is behind a Kafka event):

- ``order.confirmed``, ``order.cancelled``: the order service's status view,
  ``GET /internal/orders/{id}/status`` (aud ``order``, ``orders:status``:
  id, customer, status and reason, never the amount or the card). The order
  must be the event's customer's and be ``CONFIRMED`` or ``CANCELLED``
  (both final, so the answer cannot be stale); the reason comes from it.
- ``payment.succeeded``, ``payment.failed``, ``payment.refunded``: billing,
  ``GET /internal/orders/{id}/payment`` (aud ``billing``, ``payments:verify``).
  Billing must have recorded a payment of the event's customer with the
  event's outcome (for a refund: a payment that succeeded and that billing
  has since given back, ``refunded``); the amount and reason come from it.
  (Not the order: the order service consumes the same event at the same time
  and may not have confirmed the order yet.)

:func:`judge_order` and :func:`judge_payment` decide, without I/O; their
reasons name fields, never values, because they are logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
import redis.asyncio as redis
from hopauth import ClientCredentials, ClientCredentialsAuth, HopAuthError, TokenEndpoint
from hopauth.redis_cache import RedisTokenCache
from hopkit import outgoing
from hopkit.events import (
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    PAYMENT_FAILED,
    PAYMENT_REFUNDED,
    PAYMENT_SUCCEEDED,
    DependencyUnavailable,
)
from hopkit.tracing import outgoing_headers
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config import BILLING_AUDIENCE, BILLING_SCOPE, ORDER_AUDIENCE, ORDER_SCOPE, Settings
from .messages import Claim

PROBLEMS = "https://hopshop.example/problems/"
# The owners' problems for "no such thing". Another 404 (a wrong base URL, a moved route)
# proves nothing about the event, so it is retried, not taken for a forgery.
ORDER_NOT_FOUND = PROBLEMS + "order-not-found"
PAYMENT_NOT_FOUND = PROBLEMS + "payment-not-found"

# The order status each order event needs, and the payment outcome each payment event needs.
_ORDER_STATUS = {ORDER_CONFIRMED: "CONFIRMED", ORDER_CANCELLED: "CANCELLED"}
# A refunded payment succeeded first; billing's `refunded` says it was given back.
_PAYMENT_STATUS = {
    PAYMENT_SUCCEEDED: "succeeded",
    PAYMENT_FAILED: "failed",
    PAYMENT_REFUNDED: "succeeded",
}


class OwnerUnavailable(DependencyUnavailable):
    """Order or billing gave no usable answer this time (down, refused us, odd body): retry."""


class OrderRecord(BaseModel):
    """The order's status view (``GET /internal/orders/{id}/status``): all the worker checks
    and says."""

    model_config = ConfigDict(strict=True, extra="ignore")

    id: str
    customer_id: str
    status: str = Field(max_length=32)
    reason: str | None = Field(default=None, max_length=64)


class PaymentRecord(BaseModel):
    """The payment as billing recorded it; only what the worker checks and says."""

    model_config = ConfigDict(strict=True, extra="ignore")

    order_id: str
    status: Literal["succeeded", "failed"]
    amount_cents: int
    currency: str
    customer_id: str
    reason: str | None = Field(default=None, max_length=64)
    # Absent (an older billing) reads as not refunded: a refund event is then refused.
    refunded: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """The owner's word on a claim: the facts to word the message with, or why not to send one."""

    refusal: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def confirmed(self) -> bool:
        return self.refusal is None


def judge_order(claim: Claim, order: OrderRecord | None) -> Verdict:
    if order is None:
        return Verdict("the order service has no such order")
    if order.customer_id != claim.recipient:
        return Verdict("the order is not the subject's")
    if order.status != _ORDER_STATUS[claim.kind]:
        return Verdict(f"the order is {order.status}")
    return Verdict(facts={"reason": order.reason} if claim.kind == ORDER_CANCELLED else {})


def judge_payment(claim: Claim, payment: PaymentRecord | None) -> Verdict:
    if payment is None:
        return Verdict("billing has no payment for the order")
    if payment.customer_id != claim.recipient:
        return Verdict("the payment is not the subject's")
    if payment.status != _PAYMENT_STATUS[claim.kind]:
        return Verdict(f"billing recorded the payment as {payment.status}")
    if claim.kind == PAYMENT_REFUNDED and not payment.refunded:
        return Verdict("billing recorded no refund of the payment")
    return Verdict(
        facts={
            "amount_cents": payment.amount_cents,
            "currency": payment.currency,
            "reason": payment.reason,
        }
    )


_Record = TypeVar("_Record", OrderRecord, PaymentRecord)


class Owners:
    """Asks order and billing; each client has its base URL and the worker's token auth."""

    def __init__(self, orders: httpx.AsyncClient, billing: httpx.AsyncClient) -> None:
        self._orders = orders
        self._billing = billing

    async def check(self, claim: Claim) -> Verdict:
        """What the owner of ``claim`` says about it. Raises :class:`OwnerUnavailable`."""
        order_id = quote(claim.order_id, safe="")  # checked already; quoted anyway
        if claim.kind in _ORDER_STATUS:
            order = await _fetch(
                self._orders,
                "order",
                f"/internal/orders/{order_id}/status",
                ORDER_NOT_FOUND,
                OrderRecord,
            )
            if order is not None and order.id != claim.order_id:
                raise OwnerUnavailable("the order service answered for another order")
            return judge_order(claim, order)
        if claim.kind in _PAYMENT_STATUS:
            payment = await _fetch(
                self._billing,
                "billing",
                f"/internal/orders/{order_id}/payment",
                PAYMENT_NOT_FOUND,
                PaymentRecord,
            )
            if payment is not None and payment.order_id != claim.order_id:
                raise OwnerUnavailable("billing answered for another order")
            return judge_payment(claim, payment)
        raise ValueError(f"no owner known for {claim.kind!r}")


async def _fetch(
    http: httpx.AsyncClient, owner: str, path: str, not_found: str, shape: type[_Record]
) -> _Record | None:
    try:
        response = await http.get(path, headers=outgoing_headers())
    except (httpx.HTTPError, HopAuthError) as exc:
        # HopAuthError: the issuer would not give us a token (hopauth logged why, without
        # secrets). Either way the exception's text stays out of the reason.
        raise OwnerUnavailable(f"{owner} unreachable: {type(exc).__name__}") from None
    if response.status_code == 404 and _problem_type(response) == not_found:
        return None
    if response.status_code != 200:
        raise OwnerUnavailable(f"{owner} answered {response.status_code}")
    try:
        return shape.model_validate_json(response.content)
    except ValidationError:
        raise OwnerUnavailable(f"{owner} answered 200 with an unusable body") from None


def _problem_type(response: httpx.Response) -> str | None:
    if response.headers.get("content-type", "").split(";")[0] != "application/problem+json":
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    kind = body.get("type") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) else None


def owner_clients(
    settings: Settings, endpoint: TokenEndpoint, store: redis.Redis | None
) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    """HTTP clients for order and billing that send the worker's token for each.

    ``endpoint`` is the worker's token endpoint client (with its DPoP key, if
    any). The caller closes the returned clients.
    """
    cache = RedisTokenCache(store) if store is not None else None

    def client(base_url: str, audience: str, scope: str) -> httpx.AsyncClient:
        credentials = ClientCredentials(endpoint, audience=audience, scopes=[scope], cache=cache)
        return outgoing.async_client(
            base_url=base_url,
            auth=ClientCredentialsAuth(credentials),
            timeout=settings.owner_timeout,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )

    return (
        client(settings.order_url, ORDER_AUDIENCE, ORDER_SCOPE),
        client(settings.billing_url, BILLING_AUDIENCE, BILLING_SCOPE),
    )
