"""What each public call does: which service, which token, which scope.

Every user call gets a token with the smallest scope that call needs
(``orders:write`` to place or cancel, ``orders:read`` to look), for exactly
one audience. The downstream service decides everything about the data
(ownership, 404 for another customer's order, 409 for a paid order); the
gateway only authenticates, limits and routes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hopauth import Principal
from hopkit.idempotency import HEADER as IDEMPOTENCY_KEY
from hopkit.idempotency import IdempotencyKeyField
from hopkit.logs import annotate
from hopkit.problems import Problem

from .downstream import Downstream
from .hops import HopToken, HopTokens
from .problems import bad_gateway, broadcast_quota_spent
from .ratelimit import RateLimiter
from .schemas import (
    BROADCAST,
    INVOICES,
    NOTIFICATIONS,
    ORDER,
    ORDER_OWNER,
    ORDERS,
    PRODUCTS,
    BroadcastIn,
    BroadcastOut,
    InvoiceOut,
    NotificationOut,
    OrderIn,
    OrderOut,
    ProductOut,
)

ORDER_SERVICE = "order"
INVENTORY = "inventory"
BILLING = "billing"
NOTIFICATION = "notification"


@dataclass(frozen=True, slots=True)
class User:
    """An authenticated user request: who, and the token to exchange (never logged)."""

    principal: Principal
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Gateway:
    hops: HopTokens
    downstream: Downstream


async def list_products(gw: Gateway) -> list[ProductOut]:
    """The public catalogue: no token travels, none is needed."""
    return await gw.downstream.call(INVENTORY, "GET", "/products", PRODUCTS)


async def place_order(
    gw: Gateway, user: User, order: OrderIn, key: IdempotencyKeyField | None = None
) -> OrderOut:
    """The order, placed by order; the client's ``Idempotency-Key`` goes along as it came.

    The gateway only checked its format: order keeps the keys and decides what
    a repeated request gets (draft-ietf-httpapi-idempotency-key-header-07).
    """
    token = await gw.hops.for_user(user.token, audience=ORDER_SERVICE, scopes=["orders:write"])
    headers = None if key is None else {IDEMPOTENCY_KEY: key.field_value}
    return await gw.downstream.call(
        ORDER_SERVICE,
        "POST",
        "/orders",
        ORDER,
        token=token,
        json=order.model_dump(),
        headers=headers,
    )


async def list_orders(gw: Gateway, user: User) -> list[OrderOut]:
    token = await gw.hops.for_user(user.token, audience=ORDER_SERVICE, scopes=["orders:read"])
    return await gw.downstream.call(ORDER_SERVICE, "GET", "/orders", ORDERS, token=token)


async def get_order(gw: Gateway, user: User, order_id: str) -> OrderOut:
    token = await gw.hops.for_user(user.token, audience=ORDER_SERVICE, scopes=["orders:read"])
    return await gw.downstream.call(ORDER_SERVICE, "GET", f"/orders/{order_id}", ORDER, token=token)


async def cancel_order(gw: Gateway, user: User, order_id: str) -> OrderOut:
    token = await gw.hops.for_user(user.token, audience=ORDER_SERVICE, scopes=["orders:write"])
    return await gw.downstream.call(
        ORDER_SERVICE, "POST", f"/orders/{order_id}/cancel", ORDER, token=token
    )


async def list_invoices(gw: Gateway, user: User) -> list[InvoiceOut]:
    token = await gw.hops.for_user(user.token, audience=BILLING, scopes=["billing:read"])
    return await gw.downstream.call(BILLING, "GET", "/invoices", INVOICES, token=token)


async def list_notifications(gw: Gateway, user: User) -> list[NotificationOut]:
    token = await gw.hops.for_user(user.token, audience=NOTIFICATION, scopes=["notifications:read"])
    return await gw.downstream.call(
        NOTIFICATION, "GET", "/notifications", NOTIFICATIONS, token=token
    )


async def support_order(gw: Gateway, staff: User, order_id: str) -> OrderOut:
    """A customer's order for support staff, read as that customer with the staff member in ``act``.

    1. The staff member's token, exchanged for order (``support:read``), asks
       only who owns the order (a 404 passes on as ours).
    2. The issuer makes a delegated token (RFC 8693, ``requested_subject``):
       ``sub`` = that customer, ``act`` = gateway over the staff member,
       ``orders:read`` only.
    3. Order's customer view answers it like the customer, and logs both names.

    So the order service applies its normal ownership rule, and support staff
    can read but never change an order.
    """
    lookup = await gw.hops.for_user(staff.token, audience=ORDER_SERVICE, scopes=["support:read"])
    owner = await gw.downstream.call(
        ORDER_SERVICE, "GET", f"/support/orders/{order_id}/owner", ORDER_OWNER, token=lookup
    )
    token = await gw.hops.for_customer(
        staff.token, owner.customer_id, audience=ORDER_SERVICE, scopes=["orders:read"]
    )
    return await gw.downstream.call(ORDER_SERVICE, "GET", f"/orders/{order_id}", ORDER, token=token)


async def broadcast(
    gw: Gateway, quota: RateLimiter, staff: User, message: BroadcastIn
) -> BroadcastOut:
    """A message to every customer, sent with the gateway's own client-credentials token.

    First it counts against the staff member's quota (``sub``; 429 with
    ``Retry-After`` once spent, RFC 6585 §4): a broadcast reaches every
    customer, so nobody may post them without end. Only a valid request gets
    here, so a refused one (422) costs nothing; a sent one counts even if
    notification then fails.

    Deliberately no user context downstream: notification learns only that the
    gateway (which checked the staff member) sent it. A 401 means notification
    no longer takes our cached token (keys rotated, say): drop it, retry once.
    """
    verdict = await quota.hit(staff.principal.subject)
    if not verdict.allowed:
        annotate(broadcast_quota_spent=True)
        raise broadcast_quota_spent(verdict.retry_after, quota.limit, quota.window)
    token = await gw.hops.for_broadcast()
    try:
        return await _send_broadcast(gw, token, message)
    except Problem as problem:
        if problem.status != 401:
            raise _own_token_refused(problem) from None
    await gw.hops.refused(token)
    try:
        return await _send_broadcast(gw, await gw.hops.for_broadcast(), message)
    except Problem as problem:
        raise _own_token_refused(problem) from None


async def _send_broadcast(gw: Gateway, token: HopToken, message: BroadcastIn) -> BroadcastOut:
    return await gw.downstream.call(
        NOTIFICATION, "POST", "/broadcasts", BROADCAST, token=token, json=message.model_dump()
    )


def _own_token_refused(problem: Problem) -> Problem:
    """A refusal of the gateway's own token is our fault, not the staff member's: 502."""
    if problem.status in (401, 403):
        return bad_gateway(NOTIFICATION, "the notification service refused the gateway's token")
    return problem
