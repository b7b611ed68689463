"""Business logic: catalogue reads and the reservation lifecycle.

Functions take the session and plain values; the caller (the session
dependency) owns the transaction, so an error raised here rolls back
everything the call did. Reservation lifecycle::

    RESERVED --release--> RELEASED     units back on sale
    RESERVED --commit---> COMMITTED    units leave the stock (order paid)

Both transitions are idempotent; the two terminal states exclude each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from hopkit.problems import Problem
from sqlalchemy.ext.asyncio import AsyncSession

from . import repository
from .models import Reservation, ReservationStatus
from .repository import HoldCap, ProductRow

PROBLEMS = "https://hopshop.example/problems/"


@dataclass(frozen=True, slots=True)
class Line:
    product_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class ReservationView:
    reservation_id: str
    order_id: str
    status: ReservationStatus
    items: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Reserved:
    reservation: ReservationView
    created: bool  # False: the order already had this reservation (an idempotent replay)


def product_not_found(product_id: int) -> Problem:
    return Problem(
        404,
        "Product not found",
        f"there is no product {product_id}",
        type_=PROBLEMS + "product-not-found",
        product_id=product_id,
    )


def reservation_not_found(order_id: str) -> Problem:
    return Problem(
        404,
        "Reservation not found",
        f"order {order_id!r} has no reservation",
        type_=PROBLEMS + "reservation-not-found",
        order_id=order_id,
    )


def _units(count: int) -> str:
    """``count`` with "unit" or "units", as a customer reads it."""
    return f"{count} unit" if count == 1 else f"{count} units"


def _cap_fields(cap: HoldCap) -> dict[str, object]:
    return {"product_id": cap.product_id, "sku": cap.sku, "name": cap.name, "limit": cap.limit}


def over_hold_limit(cap: HoldCap, *, requested: int) -> Problem:
    """422 (RFC 9457 §3): one order alone asks for more of a product than one customer may hold.

    422, not 409: no payment or cancellation would ever let this order through.
    """
    return Problem(
        422,
        "Over the hold limit",
        f"one customer may hold at most {_units(cap.limit)} of {cap.name!r} unpaid; "
        f"this order asks for {requested}",
        type_=PROBLEMS + "over-hold-limit",
        **_cap_fields(cap),
        requested=requested,
    )


def hold_limit_reached(cap: HoldCap, *, held: int, requested: int) -> Problem:
    """409 (RFC 9457 §3): the subject's unpaid reservations hold what they may of a product.

    The detail speaks to the customer (the token's subject): order passes it on.
    """
    if held >= cap.limit:
        room = f"and one customer may hold at most {cap.limit}"
    else:
        room = f"and this order's {requested} more would pass the limit of {cap.limit} per customer"
    return Problem(
        409,
        "Hold limit reached",
        f"you already hold {_units(held)} of {cap.name!r} unpaid, {room}; "
        "pay or cancel an order holding it first",
        type_=PROBLEMS + "hold-limit-reached",
        **_cap_fields(cap),
        held=held,
        requested=requested,
    )


async def list_products(session: AsyncSession) -> list[ProductRow]:
    return await repository.list_products(session)


async def get_product(session: AsyncSession, product_id: int) -> ProductRow:
    product = await repository.get_product(session, product_id)
    if product is None:
        raise product_not_found(product_id)
    return product


async def reserve(
    session: AsyncSession, *, order_id: str, lines: Sequence[Line], subject: str
) -> Reserved:
    """Hold every line's units for the order, or none of them.

    Idempotent per ``order_id``: asking again with the same lines returns the
    reservation already made, whatever its status; asking with other lines is
    a conflict (an order's reservation is never silently changed).

    A product with ``max_held_per_customer`` caps the units ``subject``'s unpaid
    (RESERVED) reservations may hold together: over it, a 409
    ``hold-limit-reached`` and nothing is held; one order alone over it, a 422
    ``over-hold-limit`` (it could never succeed). Otherwise one customer could
    hold every unit of a scarce product, unpaid, renewing the orders as they
    expire (denial of inventory, OWASP OAT-021).
    """
    wanted = _normalise(lines)
    now = datetime.now(UTC)
    reservation_id = str(uuid.uuid4())
    if not await repository.claim_order(
        session, reservation_id=reservation_id, order_id=order_id, subject=subject, now=now
    ):
        existing = await repository.get_reservation(session, order_id)
        assert existing is not None  # the conflict that stopped the insert is this row
        view = _view(existing)
        if view.items != wanted:
            raise Problem(
                409,
                "Reservation conflict",
                f"order {order_id!r} already has a reservation for other items",
                type_=PROBLEMS + "reservation-conflict",
                order_id=order_id,
                reservation_id=view.reservation_id,
            )
        return Reserved(view, created=False)

    caps = await repository.hold_caps(session, [line.product_id for line in wanted])
    for line in wanted:
        cap = caps.get(line.product_id)
        if cap is not None and line.quantity > cap.limit:
            # Before any unit is held: raising rolls the claim back, so no row is left.
            raise over_hold_limit(cap, requested=line.quantity)
    # Rows in product order: concurrent multi-line reservations lock stock rows
    # in the same order on PostgreSQL, so they cannot deadlock.
    for line in wanted:
        if not await repository.hold_units(session, line.product_id, line.quantity):
            raise await _why_not_held(session, line)
        cap = caps.get(line.product_id)
        if cap is not None:
            # Counted after the units are held: on PostgreSQL this transaction now holds the
            # stock row's lock, so the subject's concurrent reservations of the product are
            # counted one after another (each sees the ones committed before it); on SQLite
            # the claim above took the write lock already. This reservation has no items yet.
            held = await repository.units_held_by(session, subject, line.product_id)
            if held + line.quantity > cap.limit:
                raise hold_limit_reached(cap, held=held, requested=line.quantity)
    await repository.add_items(
        session, reservation_id, [(x.product_id, x.quantity) for x in wanted]
    )
    view = ReservationView(reservation_id, order_id, ReservationStatus.RESERVED, wanted)
    return Reserved(view, created=True)


async def release(session: AsyncSession, order_id: str, subject: str) -> ReservationView:
    """Put a reservation's units back on sale (order cancelled or expired). Idempotent.

    An order with no reservation yet gets a released one with no units, in its
    place: order releases when a reservation's answer never came, and the
    request may still be on its way (waiting for SQLite's lock, or in a
    transaction PostgreSQL has not committed). Once released, that order id
    can never reserve (a conflict), so the late reservation holds nothing.
    """
    now = datetime.now(UTC)
    # On PostgreSQL (READ COMMITTED) a concurrent reservation can commit between any two
    # statements here; each pass that sees one released-to-be retries, and one more pass
    # then sees it committed. Three passes cover both places it can appear.
    for _ in range(3):
        if await repository.change_status(
            session,
            order_id,
            from_=ReservationStatus.RESERVED,
            to=ReservationStatus.RELEASED,
            now=now,
        ):
            reservation = await _load(session, order_id)
            for line in _view(reservation).items:
                await repository.unhold_units(session, line.product_id, line.quantity)
            return _view(reservation)
        existing = await repository.get_reservation(session, order_id)
        if existing is not None and existing.status == ReservationStatus.RESERVED.value:
            continue  # committed after the UPDATE looked: release it on the next pass
        if existing is not None:
            return _settled(existing, ReservationStatus.RELEASED)
        reservation_id = str(uuid.uuid4())
        if await repository.claim_order(
            session,
            reservation_id=reservation_id,
            order_id=order_id,
            subject=subject,
            now=now,
            status=ReservationStatus.RELEASED,
        ):
            return ReservationView(reservation_id, order_id, ReservationStatus.RELEASED, ())
        # A reservation for this order committed in between (PostgreSQL made the insert
        # wait for it): release that one, on the next pass.
    raise RuntimeError(f"the reservation of order {order_id!r} changed twice while released")


async def commit(session: AsyncSession, order_id: str) -> ReservationView:
    """The order is paid: its reserved units leave the stock for good. Idempotent."""
    if await repository.change_status(
        session,
        order_id,
        from_=ReservationStatus.RESERVED,
        to=ReservationStatus.COMMITTED,
        now=datetime.now(UTC),
    ):
        reservation = await _load(session, order_id)
        for line in _view(reservation).items:
            await repository.ship_units(session, line.product_id, line.quantity)
        return _view(reservation)
    return _settled(await _load(session, order_id), ReservationStatus.COMMITTED)


def _settled(reservation: Reservation, wanted: ReservationStatus) -> ReservationView:
    """The transition did not happen: fine if it had already happened, a conflict if not."""
    view = _view(reservation)
    if view.status is wanted:
        return view
    raise Problem(
        409,
        "Reservation already settled",
        f"the reservation of order {view.order_id!r} is {view.status.value}, "
        f"it cannot become {wanted.value}",
        type_=PROBLEMS + "reservation-settled",
        order_id=view.order_id,
        reservation_status=view.status.value,
    )


async def _load(session: AsyncSession, order_id: str) -> Reservation:
    reservation = await repository.get_reservation(session, order_id)
    if reservation is None:
        raise reservation_not_found(order_id)
    return reservation


async def _why_not_held(session: AsyncSession, line: Line) -> Problem:
    left = await repository.available(session, line.product_id)
    if left is None:
        return Problem(
            422,
            "Unknown product",
            f"there is no product {line.product_id}",
            type_=PROBLEMS + "unknown-product",
            product_id=line.product_id,
        )
    return Problem(
        409,
        "Insufficient stock",
        f"product {line.product_id}: {line.quantity} requested, {left} available",
        type_=PROBLEMS + "insufficient-stock",
        product_id=line.product_id,
        requested=line.quantity,
        available=left,
    )


def _normalise(lines: Sequence[Line]) -> tuple[Line, ...]:
    """One line per product (quantities of repeated products added up), in product order."""
    totals: dict[int, int] = {}
    for line in lines:
        totals[line.product_id] = totals.get(line.product_id, 0) + line.quantity
    return tuple(Line(product_id, totals[product_id]) for product_id in sorted(totals))


def _view(reservation: Reservation) -> ReservationView:
    return ReservationView(
        reservation_id=reservation.id,
        order_id=reservation.order_id,
        status=ReservationStatus(reservation.status),
        items=tuple(Line(item.product_id, item.quantity) for item in reservation.items),
    )
