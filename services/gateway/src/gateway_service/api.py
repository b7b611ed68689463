"""The public API (``/api/...``): parse, authorise, call the service layer. Nothing else."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, status
from hopkit.idempotency import IdempotencyKeyDep

from . import service
from .deps import (
    Broadcaster,
    BroadcastQuota,
    GatewayDep,
    InvoiceReader,
    NotificationReader,
    OrderReader,
    OrderWriter,
    SupportStaff,
)
from .schemas import (
    ORDER_ID_PATTERN,
    BroadcastIn,
    BroadcastOut,
    InvoiceOut,
    NotificationOut,
    OrderIn,
    OrderOut,
    ProductOut,
)

router = APIRouter(prefix="/api")


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {}}}


DOWNSTREAM_PROBLEMS: dict[int | str, dict[str, Any]] = {
    502: _problem("A service behind the gateway failed or answered nonsense"),
    503: _problem("A service behind the gateway (or the issuer) cannot be reached"),
    504: _problem("A service behind the gateway did not answer in time"),
}
USER_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: _problem("No token, or an invalid one (see `WWW-Authenticate`)"),
    403: _problem("Missing scope (see `WWW-Authenticate`), or not a token of the web UI"),
    422: _problem("The request is invalid; `errors` names the fields"),
    429: _problem("Too many requests from this user; see `Retry-After`"),
    **DOWNSTREAM_PROBLEMS,
}
ORDER_ID = Path(pattern=ORDER_ID_PATTERN, description="The order's id")


@router.get(
    "/products",
    tags=["catalogue"],
    summary="The catalogue (public)",
    responses=DOWNSTREAM_PROBLEMS,
)
async def list_products(gw: GatewayDep) -> list[ProductOut]:
    return await service.list_products(gw)


@router.post(
    "/orders",
    tags=["orders"],
    summary="Place an order",
    description="Needs `orders:write`. Stock is reserved at once; payment follows "
    "asynchronously (`PENDING_PAYMENT` → `CONFIRMED` or `CANCELLED`). Send an "
    "`Idempotency-Key` (a fresh one per order, the same one when you retry it): a retry "
    "after a timeout then gets the order the first request placed (201) instead of a "
    "second order; keys are yours alone and kept 24 hours.",
    status_code=status.HTTP_201_CREATED,
    responses={
        400: _problem("A malformed `Idempotency-Key` (`invalid-idempotency-key`)"),
        409: _problem(
            "Not enough stock, or too many unpaid orders of yours (order's "
            "`too-many-unpaid-orders`, passed on unchanged): nothing reserved, nothing "
            "charged; or the first request with this `Idempotency-Key` is still placing "
            "the order (`idempotency-key-in-flight`): repeat it shortly"
        ),
        **USER_PROBLEMS,
        422: _problem(
            "The request is invalid (`errors` names the fields); more units than one "
            "customer's unpaid orders may hold, in this order alone (`order-too-large`, "
            "50 by default); or this `Idempotency-Key` placed another order "
            "(`idempotency-key-reused`)"
        ),
    },
)
async def place_order(
    body: OrderIn, gw: GatewayDep, user: OrderWriter, key: IdempotencyKeyDep
) -> OrderOut:
    return await service.place_order(gw, user, body, key)


@router.get(
    "/orders",
    tags=["orders"],
    summary="Your orders",
    description="Needs `orders:read`.",
    responses=USER_PROBLEMS,
)
async def list_orders(gw: GatewayDep, user: OrderReader) -> list[OrderOut]:
    return await service.list_orders(gw, user)


@router.get(
    "/orders/{order_id}",
    tags=["orders"],
    summary="One of your orders",
    description="Needs `orders:read`. Another customer's order is a 404, like a missing one.",
    responses={404: _problem("No such order of yours"), **USER_PROBLEMS},
)
async def get_order(gw: GatewayDep, user: OrderReader, order_id: str = ORDER_ID) -> OrderOut:
    return await service.get_order(gw, user, order_id)


@router.post(
    "/orders/{order_id}/cancel",
    tags=["orders"],
    summary="Cancel an unpaid order (its stock is released)",
    description="Needs `orders:write`.",
    responses={
        404: _problem("No such order of yours"),
        409: _problem("The order is not awaiting payment"),
        **USER_PROBLEMS,
    },
)
async def cancel_order(gw: GatewayDep, user: OrderWriter, order_id: str = ORDER_ID) -> OrderOut:
    return await service.cancel_order(gw, user, order_id)


@router.get(
    "/invoices",
    tags=["billing"],
    summary="Your invoices",
    description="Needs `billing:read`.",
    responses=USER_PROBLEMS,
)
async def list_invoices(gw: GatewayDep, user: InvoiceReader) -> list[InvoiceOut]:
    return await service.list_invoices(gw, user)


@router.get(
    "/notifications",
    tags=["notifications"],
    summary="Your notifications, and broadcasts",
    description="Needs `notifications:read`. Newest first: your newest 50 notifications and, "
    "counted apart so that broadcasts cannot push yours out of the list, the newest 10 "
    "broadcasts.",
    responses=USER_PROBLEMS,
)
async def list_notifications(gw: GatewayDep, user: NotificationReader) -> list[NotificationOut]:
    return await service.list_notifications(gw, user)


@router.get(
    "/support/orders/{order_id}",
    tags=["support"],
    summary="Any customer's order (support staff)",
    description="Needs `support:read`, which only support staff get. The order service "
    "reads it as the customer's (a token with `sub` = the customer and the staff member "
    "in `act`, RFC 8693 delegation) and logs both.",
    responses={
        404: _problem("No such order"),
        **USER_PROBLEMS,
        403: _problem(
            "Not support staff (see `WWW-Authenticate`), or the issuer does not let staff "
            "act for this order's customer"
        ),
    },
)
async def support_order(gw: GatewayDep, staff: SupportStaff, order_id: str = ORDER_ID) -> OrderOut:
    return await service.support_order(gw, staff, order_id)


@router.post(
    "/broadcasts",
    tags=["support"],
    summary="A message to every customer (support staff)",
    description="Needs `support:broadcast`, which only support staff get (`support:read` "
    "alone does not post). Each staff member has a quota of broadcasts per window "
    "(`GATEWAY_BROADCAST_QUOTA` per `GATEWAY_BROADCAST_WINDOW` seconds, 10 per hour by "
    "default). The gateway sends it to notification with its own client-credentials "
    "token: no user context travels.",
    status_code=status.HTTP_201_CREATED,
    responses={
        **USER_PROBLEMS,
        403: _problem(
            "Not support staff, or a token without `support:broadcast` (see `WWW-Authenticate`)"
        ),
        429: _problem(
            "Too many requests from this user, or this staff member's broadcasts "
            "for the window are spent; see `Retry-After`"
        ),
    },
)
async def broadcast(
    body: BroadcastIn, gw: GatewayDep, staff: Broadcaster, quota: BroadcastQuota
) -> BroadcastOut:
    return await service.broadcast(gw, quota, staff, body)
