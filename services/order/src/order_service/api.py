"""HTTP routes: parse, authorise, call the service layer, shape the answer. Nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Path, Query, Response, status
from hopauth import Principal
from hopkit.idempotency import IdempotencyKeyDep
from hopkit.logs import annotate

from . import cards, idempotency, service
from .deps import (
    BearerToken,
    CompensatingSessionDep,
    InternalReader,
    InternalStatusReader,
    InventoryDep,
    LimitsDep,
    Reader,
    SessionDep,
    SessionsDep,
    Support,
    Writer,
)
from .inventory import Line
from .models import Order
from .schemas import ORDER_ID_PATTERN, OrderIn, OrderOut, OrderOwnerOut, OrderStatusOut

router = APIRouter()


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {}}}


AUTH_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: _problem("No token, or an invalid one (see `WWW-Authenticate`)"),
    403: _problem("Missing scope (see `WWW-Authenticate`) or a caller other than the ones listed"),
    422: _problem("The request is invalid; `errors` names the fields"),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _problem("No such order (or it is another customer's)")
}
ORDER_ID = Path(pattern=ORDER_ID_PATTERN, description="The order's id")


@router.post(
    "/orders",
    tags=["orders"],
    summary="Place an order",
    description="Caller: the gateway, with the customer's token exchanged for `order` "
    "(`orders:write`). Prices come from inventory's catalogue. Stock is reserved at "
    "inventory with the token exchanged again (`inventory:reserve`); the order is stored "
    "`PENDING_PAYMENT` with its `order.placed` event in one transaction. Only the masked "
    "card is kept. A customer's unpaid orders may hold at most `ORDER_MAX_OPEN_ORDERS` "
    "orders and `ORDER_MAX_OPEN_UNITS` units together: beyond that, a 409 "
    "(`too-many-unpaid-orders`) until one is paid or cancelled; one order of more units "
    "than that is a 422 (`order-too-large`). With an `Idempotency-Key` "
    "(draft-ietf-httpapi-idempotency-key-header), per customer and kept 24 hours, a "
    "repeated request places nothing new: the order the key placed comes back (201, "
    "`Idempotent-Replayed: true`); while that order is still being placed, a 409 "
    "(`idempotency-key-in-flight`); with other items or another card, a 422 "
    "(`idempotency-key-reused`). A placement that fails frees its key.",
    status_code=status.HTTP_201_CREATED,
    responses={
        400: _problem("A malformed `Idempotency-Key` (`invalid-idempotency-key`)"),
        409: _problem(
            "Insufficient stock (`insufficient-stock`), too many unpaid orders "
            "(`too-many-unpaid-orders`), or the most units of a scarce product one customer "
            "may hold unpaid (`hold-limit-reached`): nothing was reserved or stored; or the first "
            "request with this `Idempotency-Key` is still placing its order "
            "(`idempotency-key-in-flight`)"
        ),
        503: _problem("Inventory could not be reached"),
        **AUTH_PROBLEMS,
        422: _problem(
            "The request is invalid (`errors` names the fields), or the order is not "
            "possible (`unknown-product`, `order-too-large`, `over-hold-limit` ...), or the "
            "`Idempotency-Key` placed another order (`idempotency-key-reused`)"
        ),
    },
)
async def place_order(
    body: OrderIn,
    session: CompensatingSessionDep,
    principal: Writer,
    token: BearerToken,
    inventory: InventoryDep,
    sessions: SessionsDep,
    limits: LimitsDep,
    key: IdempotencyKeyDep,
    response: Response,
) -> OrderOut:
    # The key itself is never logged: a client may have put anything there (an e-mail
    # address, a card number), and a hash of a guessable value is the value. A replay's
    # line names its order (order_id), which ties it to the request that placed it.
    placed = await service.place_order(
        session,
        customer_id=principal.subject,
        lines=[Line(item.product_id, item.quantity) for item in body.items],
        card_masked=cards.mask(body.card),
        user_token=token,
        inventory=inventory,
        sessions=sessions,
        order_limits=limits,
        idempotency_key=None if key is None else key.key,
    )
    if placed.replayed:
        annotate(idempotent_replay=True)
        response.headers[idempotency.REPLAYED] = "true"
    _audit("place", placed.order.id, principal)
    return order_out(placed.order)


@router.get(
    "/orders",
    tags=["orders"],
    summary="The customer's own orders, newest first",
    responses=AUTH_PROBLEMS,
)
async def list_orders(
    session: SessionDep, principal: Reader, limit: int = Query(default=50, ge=1, le=100)
) -> list[OrderOut]:
    _note_delegation("support-list", None, principal)
    return [order_out(o) for o in await service.list_orders(session, principal.subject, limit)]


@router.get(
    "/orders/{order_id}",
    tags=["orders"],
    summary="One of the customer's own orders",
    description="Also support staff's view of a customer's order: the gateway then presents "
    "a delegated token (`sub` = the customer, `act` = gateway over the staff member), and "
    "the request's log line names both (`customer`, `acted_by`).",
    responses={**NOT_FOUND, **AUTH_PROBLEMS},
)
async def get_order(session: SessionDep, principal: Reader, order_id: str = ORDER_ID) -> OrderOut:
    _note_delegation("support-view", order_id, principal)
    return order_out(await service.get_own_order(session, order_id, principal.subject))


@router.post(
    "/orders/{order_id}/cancel",
    tags=["orders"],
    summary="Cancel one's own unpaid order",
    description="The order becomes `CANCELLED` (reason `customer`), its reservation is "
    "released (with the order service's own client-credentials token) and `order.cancelled` "
    "is published. An order that is no longer `PENDING_PAYMENT`: 409.",
    responses={
        **NOT_FOUND,
        409: _problem("The order is not PENDING_PAYMENT"),
        503: _problem("Inventory could not be reached; the order is unchanged"),
        **AUTH_PROBLEMS,
    },
)
async def cancel_order(
    session: SessionDep, principal: Writer, inventory: InventoryDep, order_id: str = ORDER_ID
) -> OrderOut:
    _audit("cancel", order_id, principal)
    return order_out(
        await service.cancel_by_customer(session, order_id, principal.subject, inventory)
    )


@router.get(
    "/support/orders/{order_id}/owner",
    tags=["support"],
    summary="Who owns an order, for support staff",
    description="Caller: the gateway, for support staff (`support:read`). Only the owner's "
    "id, never the order: to see the order, the gateway gets a token for that customer with "
    "the staff member as actor and reads `GET /orders/{id}` like the customer would. The "
    "request's log line names the token's `sub`, its `act` chain and the owner.",
    responses={**NOT_FOUND, **AUTH_PROBLEMS},
)
async def support_order_owner(
    session: SessionDep, principal: Support, order_id: str = ORDER_ID
) -> OrderOwnerOut:
    _audit("support-owner-lookup", order_id, principal)
    order = await service.get_any_order(session, order_id)
    annotate(customer_id=order.customer_id)
    return OrderOwnerOut(order_id=order.id, customer_id=order.customer_id)


@router.get(
    "/internal/orders/{order_id}",
    tags=["internal"],
    summary="The authoritative order, for the billing worker, which must not believe an event",
    description="Caller: `billing-worker` (what to charge whom), by client credentials "
    "(`orders:read`). Amount, currency, status and customer come from here, never from an "
    "event.",
    responses={**NOT_FOUND, **AUTH_PROBLEMS},
)
async def internal_get_order(
    session: SessionDep, principal: InternalReader, order_id: str = ORDER_ID
) -> OrderOut:
    _audit("internal-read", order_id, principal)
    return order_out(await service.get_any_order(session, order_id))


@router.get(
    "/internal/orders/{order_id}/status",
    tags=["internal"],
    summary="An order's status and owner, for the notification worker",
    description="Caller: `notification-worker`, by client credentials (`orders:status`), "
    "checking an `order.confirmed` / `order.cancelled` event before a customer is told. "
    "Only `{id, customer_id, status, reason}`: no amount, items or card (least privilege).",
    responses={**NOT_FOUND, **AUTH_PROBLEMS},
)
async def internal_order_status(
    session: SessionDep, principal: InternalStatusReader, order_id: str = ORDER_ID
) -> OrderStatusOut:
    _audit("internal-status", order_id, principal)
    order = await service.get_any_order(session, order_id)
    return OrderStatusOut.model_validate(
        {
            "id": order.id,
            "customer_id": order.customer_id,
            "status": order.status,
            "reason": order.reason,
        }
    )


def _audit(action: str, order_id: str, principal: Principal) -> None:
    """Who did what, on this request's log line: claims only, never the token."""
    annotate(
        action=action,
        order_id=order_id,
        sub=principal.subject,
        client_id=principal.client_id,
        act=list(principal.actors),
        jti=principal.token_id,
    )


def _note_delegation(action: str, order_id: str | None, principal: Principal) -> None:
    """A person acting for the customer (``act.act.sub``, RFC 8693 §4.1): log both of them.

    The gateway is the current actor; an actor beneath it is the user it acted
    for, here support staff reading a customer's orders. Access is decided as
    for the customer (``sub``); the log line keeps who really looked.
    """
    if len(principal.actors) < 2:
        return
    if order_id is None:
        annotate(action=action, sub=principal.subject, act=list(principal.actors))
    else:
        _audit(action, order_id, principal)
    annotate(customer=principal.subject, acted_by=principal.actors[1])


def order_out(order: Order) -> OrderOut:
    return OrderOut.model_validate(
        {
            "id": order.id,
            "status": order.status,
            "reason": order.reason,
            "customer_id": order.customer_id,
            "items": [
                {
                    "product_id": item.product_id,
                    "sku": item.sku,
                    "name": item.name,
                    "quantity": item.quantity,
                    "unit_price_cents": item.unit_price_cents,
                }
                for item in order.items
            ],
            "total_cents": order.total_cents,
            "currency": order.currency,
            "card": {"masked": order.card_masked},
            "created_at": _utc(order.created_at),
            "updated_at": _utc(order.updated_at),
        }
    )


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
