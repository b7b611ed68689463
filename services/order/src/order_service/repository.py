"""All the SQL of the order service. Functions take the session; none commits.

Status changes are conditional UPDATEs (``WHERE status = 'PENDING_PAYMENT'``)
and the caller looks at the row count: whoever moves an order out of
``PENDING_PAYMENT`` first wins (payment, customer or expiry job), and every
later attempt, concurrent or redelivered, sees that it lost and changes
nothing. On PostgreSQL the losing UPDATE waits for the winner's commit and
then re-checks its ``WHERE``; on SQLite writers are serialised.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from .models import CancelReason, Order, OrderItem, OrderStatus


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


async def overdue_order_ids(
    session: AsyncSession, placed_before: datetime, limit: int
) -> list[str]:
    """Orders still waiting for payment that were placed before ``placed_before``, oldest first."""
    statement = (
        select(Order.id)
        .where(
            Order.status == OrderStatus.PENDING_PAYMENT.value,
            Order.created_at < placed_before,
        )
        .order_by(Order.created_at, Order.id)
        .limit(limit)
    )
    return list(await session.scalars(statement))


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

    ``customer_id`` narrows the change to that customer's order.
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
    return _rowcount(result) == 1


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
