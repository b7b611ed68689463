"""HTTP routes: parse, authorise, call the service layer, shape the answer. Nothing else."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status
from hopauth import Principal
from hopkit.logs import annotate
from hopkit.problems import Problem
from pydantic import BeforeValidator

from . import service
from .deps import Committer, Releaser, Reserver, SessionDep
from .schemas import MAX_ID, ORDER_ID_PATTERN, ProductOut, ReservationIn, ReservationOut
from .service import Line, ReservationView

router = APIRouter()


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {}}}


AUTH_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: _problem("No token, or an invalid one (see `WWW-Authenticate`)"),
    403: _problem("Missing scope (see `WWW-Authenticate`) or a caller other than the ones listed"),
    422: _problem("The request is invalid; `errors` names the fields"),
}
ORDER_ID = Path(pattern=ORDER_ID_PATTERN, description="The order whose reservation this is")


def _digits_only(value: object) -> object:
    """One spelling per product: ``/products/1``, never ``1.0``, ``01``, ``+1`` or ``1_0``.

    Pydantic's lax integers accept all of those, so one resource would have many
    URLs (and many cache keys).
    """
    if isinstance(value, str) and not re.fullmatch(r"[1-9][0-9]{0,18}", value):
        raise ValueError("must be a whole number in plain digits, without a leading zero")
    return value


ProductId = Annotated[int, BeforeValidator(_digits_only), Path(ge=1, le=MAX_ID)]


@router.get("/products", tags=["catalogue"], summary="The public catalogue")
async def list_products(session: SessionDep) -> list[ProductOut]:
    return [
        ProductOut.model_validate(row, from_attributes=True)
        for row in await service.list_products(session)
    ]


@router.get(
    "/products/{product_id}",
    tags=["catalogue"],
    summary="One product",
    responses={404: _problem("No such product")},
)
async def get_product(session: SessionDep, product_id: ProductId) -> ProductOut:
    return ProductOut.model_validate(
        await service.get_product(session, product_id), from_attributes=True
    )


@router.post(
    "/reservations",
    tags=["reservations"],
    summary="Reserve stock for an order (all lines or none)",
    description="Caller: the `order` service with a token exchanged for the user "
    "(`inventory:reserve`). Idempotent per `order_id`: a repeat returns the existing "
    "reservation with 200; the same `order_id` with other items is a 409. A product with "
    "`max_held_per_customer` caps the units the user's unpaid reservations may hold "
    "together: over it, 409 `hold-limit-reached`; one order alone asking for more than the "
    "cap, 422 `over-hold-limit` (it could never succeed). A token with no user behind it "
    "(client credentials) reserves nothing: 403 `customer-required`.",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "The order already had this reservation", "model": ReservationOut},
        409: _problem(
            "Insufficient stock, or the user's unpaid reservations already hold the most units "
            "of a product one customer may hold (nothing is reserved either way), or the "
            "order_id was used for other items"
        ),
        **AUTH_PROBLEMS,
        422: _problem(
            "The request is invalid (`errors` names the fields), a product is unknown "
            "(`unknown-product`), or one line asks for more units of a product than one "
            "customer may hold unpaid (`over-hold-limit`): nothing is reserved"
        ),
    },
)
async def reserve(
    body: ReservationIn, session: SessionDep, principal: Reserver, response: Response
) -> ReservationOut:
    _audit("reserve", body.order_id, principal)
    if principal.is_service:
        # Units are capped per subject (the customer): a service's own token would hold
        # them in its own name, past every customer's cap. No flow issues one; refused anyway.
        raise Problem(
            403,
            "Customer required",
            "stock is reserved for a customer: this token has no user behind it",
            type_=service.PROBLEMS + "customer-required",
        )
    reserved = await service.reserve(
        session,
        order_id=body.order_id,
        lines=[Line(item.product_id, item.quantity) for item in body.items],
        subject=principal.subject,
    )
    annotate(reservation_id=reserved.reservation.reservation_id, replay=not reserved.created)
    if not reserved.created:
        response.status_code = status.HTTP_200_OK
    return _out(reserved.reservation)


@router.post(
    "/reservations/{order_id}/release",
    tags=["reservations"],
    summary="Release a reservation: its units go back on sale",
    description="Callers: `order` (cancellation) and `order-scheduler` (expiry), by client "
    "credentials (`inventory:release`). Idempotent: releasing a released reservation "
    "answers 200 again. An order with no reservation gets a released one with no units "
    "(200), so a reservation for it still on its way is refused (409 "
    "`reservation-conflict`): order releases when a reservation's answer was lost. A "
    "committed (sold) reservation: 409.",
    responses={
        409: _problem("The reservation was committed"),
        **AUTH_PROBLEMS,
    },
)
async def release(
    session: SessionDep, principal: Releaser, order_id: str = ORDER_ID
) -> ReservationOut:
    _audit("release", order_id, principal)
    return _out(await service.release(session, order_id, principal.subject))


@router.post(
    "/reservations/{order_id}/commit",
    tags=["reservations"],
    summary="Commit a reservation: the order is paid, its units leave the stock",
    description="Caller: `order` only, by client credentials (`inventory:release`, the scope "
    "that settles reservations). Idempotent. Unknown order: 404. A released reservation: 409.",
    responses={
        404: _problem("The order has no reservation"),
        409: _problem("The reservation was released"),
        **AUTH_PROBLEMS,
    },
)
async def commit(
    session: SessionDep, principal: Committer, order_id: str = ORDER_ID
) -> ReservationOut:
    _audit("commit", order_id, principal)
    return _out(await service.commit(session, order_id))


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


def _out(view: ReservationView) -> ReservationOut:
    return ReservationOut.model_validate(
        {
            "reservation_id": view.reservation_id,
            "order_id": view.order_id,
            "status": view.status.value,
            "items": [{"product_id": x.product_id, "quantity": x.quantity} for x in view.items],
        }
    )
