"""All the SQL of the inventory service. Functions take the session; none commits.

Stock moves only through conditional UPDATEs whose ``WHERE`` re-checks the
condition the change relies on, and the caller looks at the row count. That
is atomic on SQLite (one writer at a time) and on PostgreSQL (a concurrent
UPDATE of the same row waits, then re-evaluates the ``WHERE`` on the new
row version under READ COMMITTED), so no read-then-write race can oversell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from hopkit.db import insert_unless_present
from sqlalchemy import CursorResult, Select, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from .models import Product, Reservation, ReservationItem, ReservationStatus, Stock


@dataclass(frozen=True, slots=True)
class ProductRow:
    id: int
    sku: str
    name: str
    price_cents: int
    currency: str
    available: int
    max_held_per_customer: int | None


@dataclass(frozen=True, slots=True)
class HoldCap:
    """A product whose units one subject may hold unpaid are capped."""

    product_id: int
    sku: str
    name: str
    limit: int


def _product_rows() -> Select[int, str, str, int, str, int, int | None]:
    return (
        select(
            Product.id,
            Product.sku,
            Product.name,
            Product.price_cents,
            Product.currency,
            (Stock.quantity - Stock.reserved).label("available"),
            Product.max_held_per_customer,
        )
        .join(Stock, Stock.product_id == Product.id)
        .order_by(Product.id)
    )


async def list_products(session: AsyncSession) -> list[ProductRow]:
    rows = await session.execute(_product_rows())
    return [ProductRow(*row) for row in rows.all()]


async def get_product(session: AsyncSession, product_id: int) -> ProductRow | None:
    row = (await session.execute(_product_rows().where(Product.id == product_id))).first()
    return ProductRow(*row) if row is not None else None


async def product_exists(session: AsyncSession, product_id: int) -> bool:
    found = await session.scalar(select(Product.id).where(Product.id == product_id))
    return found is not None


async def available(session: AsyncSession, product_id: int) -> int | None:
    value = await session.scalar(
        select(Stock.quantity - Stock.reserved).where(Stock.product_id == product_id)
    )
    return int(value) if value is not None else None


async def product_id_by_sku(session: AsyncSession, sku: str) -> int | None:
    return await session.scalar(select(Product.id).where(Product.sku == sku))


async def add_product(
    session: AsyncSession,
    *,
    sku: str,
    name: str,
    price_cents: int,
    currency: str,
    quantity: int,
    max_held_per_customer: int | None = None,
) -> int:
    product = Product(
        sku=sku,
        name=name,
        price_cents=price_cents,
        currency=currency,
        max_held_per_customer=max_held_per_customer,
    )
    session.add(product)
    await session.flush()
    session.add(Stock(product_id=product.id, quantity=quantity, reserved=0))
    await session.flush()
    return product.id


async def set_hold_cap(session: AsyncSession, product_id: int, limit: int | None) -> bool:
    """Set the product's ``max_held_per_customer``: True if that changed it."""
    result = await session.execute(
        update(Product)
        .where(Product.id == product_id, Product.max_held_per_customer.is_distinct_from(limit))
        .values(max_held_per_customer=limit)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def hold_caps(session: AsyncSession, product_ids: Sequence[int]) -> dict[int, HoldCap]:
    """The capped products among ``product_ids``, by id (uncapped ones are left out)."""
    rows = await session.execute(
        select(Product.id, Product.sku, Product.name, Product.max_held_per_customer).where(
            Product.id.in_(product_ids), Product.max_held_per_customer.is_not(None)
        )
    )
    return {
        product_id: HoldCap(product_id, sku, name, limit)
        for product_id, sku, name, limit in rows.all()
        if limit is not None  # always, by the WHERE; for the type checker
    }


async def units_held_by(session: AsyncSession, subject: str, product_id: int) -> int:
    """Units of the product that the subject's unpaid (RESERVED) reservations hold."""
    held = await session.scalar(
        select(func.coalesce(func.sum(ReservationItem.quantity), 0))
        .join(Reservation, Reservation.id == ReservationItem.reservation_id)
        .where(
            Reservation.subject == subject,
            Reservation.status == ReservationStatus.RESERVED.value,
            ReservationItem.product_id == product_id,
        )
    )
    return int(held or 0)


# -- stock ------------------------------------------------------------------


async def hold_units(session: AsyncSession, product_id: int, quantity: int) -> bool:
    """Hold ``quantity`` units if that many are available; False (and no change) if not."""
    result = await session.execute(
        update(Stock)
        .where(Stock.product_id == product_id, Stock.quantity - Stock.reserved >= quantity)
        .values(reserved=Stock.reserved + quantity)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def unhold_units(session: AsyncSession, product_id: int, quantity: int) -> None:
    """Put held units back on sale."""
    await session.execute(
        update(Stock)
        .where(Stock.product_id == product_id)
        .values(reserved=Stock.reserved - quantity)
        .execution_options(synchronize_session=False)
    )


async def ship_units(session: AsyncSession, product_id: int, quantity: int) -> None:
    """Held units are sold: they leave the stock and stop being held."""
    await session.execute(
        update(Stock)
        .where(Stock.product_id == product_id)
        .values(quantity=Stock.quantity - quantity, reserved=Stock.reserved - quantity)
        .execution_options(synchronize_session=False)
    )


# -- reservations -----------------------------------------------------------


async def claim_order(
    session: AsyncSession,
    *,
    reservation_id: str,
    order_id: str,
    subject: str,
    now: datetime,
    status: ReservationStatus = ReservationStatus.RESERVED,
) -> bool:
    """Insert the reservation header unless the order has one: True if this call made it.

    ``INSERT ... ON CONFLICT (order_id) DO NOTHING`` settles a race between two
    requests for the same order without an error (on PostgreSQL the second
    waits for the first to commit). Being a write, it is also the first
    statement of the transaction, so on SQLite the transaction takes the write
    lock at once and concurrent writers wait in the busy handler.
    """
    values = {
        "id": reservation_id,
        "order_id": order_id,
        "status": status.value,
        "subject": subject,
        "created_at": now,
        "updated_at": now,
    }
    return await insert_unless_present(session, Reservation, values, ["order_id"])


async def add_items(
    session: AsyncSession, reservation_id: str, items: Sequence[tuple[int, int]]
) -> None:
    await session.execute(
        insert(ReservationItem),
        [
            {"reservation_id": reservation_id, "product_id": product_id, "quantity": quantity}
            for product_id, quantity in items
        ],
    )


async def get_reservation(session: AsyncSession, order_id: str) -> Reservation | None:
    # One query with a join rather than a second one for the items: every statement is
    # a few round trips to the driver's thread, which is most of what a read costs.
    statement = (
        select(Reservation)
        .where(Reservation.order_id == order_id)
        .options(joinedload(Reservation.items))
        .execution_options(populate_existing=True)
    )
    return (await session.execute(statement)).unique().scalar_one_or_none()


async def change_status(
    session: AsyncSession,
    order_id: str,
    *,
    from_: ReservationStatus,
    to: ReservationStatus,
    now: datetime,
) -> bool:
    """Move the order's reservation from one status to another; False if it was not in ``from_``.

    The conditional UPDATE is what makes release and commit happen once each,
    however many times (or however concurrently) they are asked for.
    """
    result = await session.execute(
        update(Reservation)
        .where(Reservation.order_id == order_id, Reservation.status == from_.value)
        .values(status=to.value, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
