"""Undo steps for work done outside the database, run if the transaction does not commit.

Placing an order reserves stock at inventory (an HTTP call) before the order
row exists. If the transaction that stores the order then fails, at the
flush or at the commit, the reservation must be released, or the units stay
held for an order nobody can see. The service layer registers the undo step
on the session; whoever owns the transaction runs the steps after a
rollback (see :mod:`order_service.deps`). A failing step is logged, never raised:
the original error is the one the caller must see.

A rollback is not proof that nothing was stored: a commit that raised may have
landed (PostgreSQL, the connection lost after COMMIT was sent). Steps that undo
a placement are wrapped in :func:`unless_stored`, so an order that exists keeps
its reservation, hold and key.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .models import Order

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[None]]
_KEY = "order_service_compensations"


def on_rollback(session: AsyncSession, what: str, step: Step) -> None:
    """Run ``step`` if this session's transaction rolls back instead of committing."""
    session.info.setdefault(_KEY, []).append((what, step))


def discard(session: AsyncSession) -> None:
    """The transaction committed: the steps are no longer needed."""
    session.info.pop(_KEY, None)


async def run(session: AsyncSession) -> None:
    """Run the registered steps, newest first (the transaction was rolled back)."""
    steps: list[tuple[str, Step]] = session.info.pop(_KEY, [])
    for what, step in reversed(steps):
        try:
            await step()
        except Exception as exc:
            log.error("compensation failed", extra={"step": what, "error": type(exc).__name__})
        else:
            log.info("compensated", extra={"step": what})


def unless_stored(sessions: async_sessionmaker[AsyncSession], order_id: str, step: Step) -> Step:
    """``step``, skipped if order ``order_id`` is stored after all (read in a session of its own).

    Undoing a stored order's placement would release the stock of an order whose
    ``order.placed`` is on its way, lower the customer's holds below their unpaid
    orders, and free its Idempotency-Key for a second order.
    """

    async def guarded() -> None:
        async with sessions() as session:
            stored = await session.scalar(select(Order.id).where(Order.id == order_id))
        if stored is not None:
            log.warning("order stored after all; nothing undone", extra={"order_id": order_id})
            return
        await step()

    return guarded
