"""All the SQL of the order service. Functions take the session; none commits.

Status changes are conditional UPDATEs (``WHERE status = 'PENDING_PAYMENT'``)
and the caller looks at the row count: whoever moves an order out of
``PENDING_PAYMENT`` first wins (payment, customer or expiry job), and every
later attempt, concurrent or redelivered, sees that it lost and changes
nothing. On PostgreSQL the losing UPDATE waits for the winner's commit and
then re-checks its ``WHERE``; on SQLite writers are serialised.

The limits on unpaid orders (:mod:`order_service.limits`) are the same kind
of statement: one conditional UPDATE of the customer's ``customer_holds`` row
adds an order only while both totals stay within the limits, and a hold is
given back by deleting its ``holds`` row, which only one caller can do.

An ``Idempotency-Key`` (:mod:`order_service.idempotency`) is claimed with
``INSERT ... ON CONFLICT DO NOTHING`` on the table's primary key (customer,
key): of concurrent placements with the same key exactly one inserts the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hopkit.db import insert_unless_present
from sqlalchemy import CursorResult, and_, delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from .models import (
    CancelReason,
    CustomerHolds,
    Hold,
    IdempotencyKey,
    Order,
    OrderItem,
    OrderStatus,
)


async def add_order(session: AsyncSession, order: Order, items: Sequence[OrderItem]) -> None:
    """Insert the order with its items; ``order.items`` is then set (no reading back)."""
    order.items = sorted(items, key=lambda item: item.product_id)
    session.add(order)
    await session.flush()


async def get_order(session: AsyncSession, order_id: str) -> Order | None:
    # One query with a join rather than a second one for the items: every statement is
    # a few round trips to the driver's thread, which is most of what a read costs.
    statement = (
        select(Order)
        .where(Order.id == order_id)
        .options(joinedload(Order.items))
        .execution_options(populate_existing=True)
    )
    return (await session.execute(statement)).unique().scalar_one_or_none()


async def list_orders(session: AsyncSession, customer_id: str, limit: int) -> list[Order]:
    statement = (
        select(Order)
        .where(Order.customer_id == customer_id)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(limit)
        .options(selectinload(Order.items))
    )
    return list(await session.scalars(statement))


async def overdue_orders(
    session: AsyncSession,
    placed_before: datetime,
    limit: int,
    after: tuple[datetime, str] | None = None,
) -> list[tuple[datetime, str]]:
    """(placed at, id) of orders still waiting for payment placed before ``placed_before``.

    Oldest first, and only those after ``after`` (the last of the previous
    batch): a batch full of orders that stay pending (waiting for a person)
    must not hide the ones behind it.
    """
    statement = select(Order.created_at, Order.id).where(
        Order.status == OrderStatus.PENDING_PAYMENT.value,
        Order.created_at < placed_before,
    )
    if after is not None:
        placed, order_id = after
        statement = statement.where(
            or_(
                Order.created_at > placed,
                and_(Order.created_at == placed, Order.id > order_id),
            )
        )
    rows = await session.execute(statement.order_by(Order.created_at, Order.id).limit(limit))
    return [(row[0], row[1]) for row in rows]


async def leave_pending(
    session: AsyncSession,
    order_id: str,
    *,
    to: OrderStatus,
    reason: CancelReason | None,
    now: datetime,
    customer_id: str | None = None,
) -> bool:
    """Move a ``PENDING_PAYMENT`` order to ``to``; False (and no change) if it was not pending.

    ``customer_id`` narrows the change to that customer's order. The order's
    hold is given back in the same transaction: whatever moves an order out of
    ``PENDING_PAYMENT`` frees its place under the customer's limits.
    """
    statement = update(Order).where(
        Order.id == order_id, Order.status == OrderStatus.PENDING_PAYMENT.value
    )
    if customer_id is not None:
        statement = statement.where(Order.customer_id == customer_id)
    result = await session.execute(
        statement.values(
            status=to.value, reason=reason.value if reason else None, updated_at=now
        ).execution_options(synchronize_session=False)
    )
    if _rowcount(result) != 1:
        return False
    await give_back_hold(session, order_id)
    return True


# -- holds: what unpaid orders count against their customer's limits ---------------------


async def take_hold(
    session: AsyncSession,
    *,
    order_id: str,
    customer_id: str,
    units: int,
    max_orders: int,
    max_units: int,
    now: datetime,
) -> bool:
    """Count one more open order of ``units`` for the customer; False if a limit would pass.

    The check and the increment are one conditional UPDATE, so concurrent
    placements cannot both see the last free place: on PostgreSQL the second
    waits for the first's commit and re-checks its ``WHERE``; on SQLite
    writers are serialised. A customer's first hold inserts their row (a
    concurrent insert of it is absorbed) and tries again.
    """
    if not await _add_to_totals(session, customer_id, units, max_orders, max_units):
        row = {"customer_id": customer_id, "open_orders": 0, "open_units": 0}
        await insert_unless_present(session, CustomerHolds, row, ["customer_id"])
        if not await _add_to_totals(session, customer_id, units, max_orders, max_units):
            return False
    session.add(Hold(order_id=order_id, customer_id=customer_id, units=units, taken_at=now))
    await session.flush()
    return True


async def customer_totals(session: AsyncSession, customer_id: str) -> tuple[int, int]:
    """The customer's open orders and the units they hold; (0, 0) for a customer with none."""
    statement = select(CustomerHolds.open_orders, CustomerHolds.open_units).where(
        CustomerHolds.customer_id == customer_id
    )
    row = (await session.execute(statement)).one_or_none()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


async def give_back_hold(session: AsyncSession, order_id: str) -> bool:
    """Delete the order's hold and take it off its customer's totals; False if there was none.

    The DELETE decides: of two callers giving back the same hold, only the one
    that deleted the row changes the totals.
    """
    statement = (
        delete(Hold)
        .where(Hold.order_id == order_id)
        .returning(Hold.customer_id, Hold.units)
        .execution_options(synchronize_session=False)
    )
    row = (await session.execute(statement)).one_or_none()
    if row is None:
        return False
    await _subtract_from_totals(session, str(row[0]), int(row[1]))
    return True


async def date_hold_back(session: AsyncSession, order_id: str, taken_at: datetime) -> None:
    await session.execute(
        update(Hold)
        .where(Hold.order_id == order_id)
        .values(taken_at=taken_at)
        .execution_options(synchronize_session=False)
    )


async def stale_holds(session: AsyncSession, taken_before: datetime, limit: int) -> list[str]:
    """Order ids of holds taken before ``taken_before`` that have no unpaid order.

    Such a hold is what a placement leaves when the process stops between
    taking it and storing the order, or when releasing its reservation failed:
    no order will ever give it back. A hold whose order is still pending is
    left to that order.
    """
    pending = exists().where(
        Order.id == Hold.order_id, Order.status == OrderStatus.PENDING_PAYMENT.value
    )
    statement = (
        select(Hold.order_id)
        .where(Hold.taken_at < taken_before, ~pending)
        .order_by(Hold.taken_at)
        .limit(limit)
    )
    return list((await session.scalars(statement)).all())


async def _add_to_totals(
    session: AsyncSession, customer_id: str, units: int, max_orders: int, max_units: int
) -> bool:
    statement = (
        update(CustomerHolds)
        .where(
            CustomerHolds.customer_id == customer_id,
            CustomerHolds.open_orders < max_orders,
            CustomerHolds.open_units + units <= max_units,
        )
        .values(
            open_orders=CustomerHolds.open_orders + 1,
            open_units=CustomerHolds.open_units + units,
        )
        .execution_options(synchronize_session=False)
    )
    return _rowcount(await session.execute(statement)) == 1


async def _subtract_from_totals(session: AsyncSession, customer_id: str, units: int) -> None:
    await session.execute(
        update(CustomerHolds)
        .where(CustomerHolds.customer_id == customer_id)
        .values(
            open_orders=CustomerHolds.open_orders - 1,
            open_units=CustomerHolds.open_units - units,
        )
        .execution_options(synchronize_session=False)
    )


# -- idempotency keys: which order a customer's key placed ------------------------------


async def claim_idempotency_key(
    session: AsyncSession,
    *,
    customer_id: str,
    key: str,
    fingerprint: str,
    order_id: str,
    now: datetime,
    expired_before: datetime,
) -> bool:
    """Record the key for ``order_id``; False if the customer holds it already.

    A row of the same key created before ``expired_before`` is past its
    retention and is replaced. The insert absorbs a concurrent one: on
    PostgreSQL the second waits for the first's commit, then inserts nothing;
    on SQLite writers are serialised.
    """
    await session.execute(
        delete(IdempotencyKey)
        .where(
            IdempotencyKey.customer_id == customer_id,
            IdempotencyKey.idempotency_key == key,
            IdempotencyKey.created_at < expired_before,
        )
        .execution_options(synchronize_session=False)
    )
    row = {
        "customer_id": customer_id,
        "idempotency_key": key,
        "fingerprint": fingerprint,
        "order_id": order_id,
        "created_at": now,
    }
    return await insert_unless_present(
        session, IdempotencyKey, row, ["customer_id", "idempotency_key"]
    )


async def find_idempotency_key(
    session: AsyncSession, customer_id: str, key: str
) -> tuple[str, str, bool] | None:
    """The key's (fingerprint, order id, whether that order is stored), or None."""
    stored = exists().where(Order.id == IdempotencyKey.order_id)
    statement = select(IdempotencyKey.fingerprint, IdempotencyKey.order_id, stored).where(
        IdempotencyKey.customer_id == customer_id, IdempotencyKey.idempotency_key == key
    )
    row = (await session.execute(statement)).one_or_none()
    return None if row is None else (str(row[0]), str(row[1]), bool(row[2]))


async def release_idempotency_key(
    session: AsyncSession, customer_id: str, key: str, order_id: str
) -> None:
    """Forget the key, if it is still the one claimed for ``order_id``."""
    await session.execute(
        delete(IdempotencyKey)
        .where(
            IdempotencyKey.customer_id == customer_id,
            IdempotencyKey.idempotency_key == key,
            IdempotencyKey.order_id == order_id,
        )
        .execution_options(synchronize_session=False)
    )


async def forget_idempotency_keys(
    session: AsyncSession, *, created_before: datetime, unused_before: datetime
) -> int:
    """Delete keys created before ``created_before``, and those created before
    ``unused_before`` whose order was never stored; how many.

    The second kind is what a placement leaves when the process stops between
    claiming the key and storing the order (or releasing the key).
    """
    stored = exists().where(Order.id == IdempotencyKey.order_id)
    statement = delete(IdempotencyKey).where(
        or_(
            IdempotencyKey.created_at < created_before,
            and_(IdempotencyKey.created_at < unused_before, ~stored),
        )
    )
    return _rowcount(await session.execute(statement.execution_options(synchronize_session=False)))


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
