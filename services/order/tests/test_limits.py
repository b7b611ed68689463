"""The limit check's two halves agree: the conditional UPDATE and :func:`limits.has_room`.

``limits.take`` retries a refused UPDATE when the totals it reads afterwards
show room (a cancellation committed in between, on PostgreSQL). That is only
right if both say the same for every total: here each case is put in a real
(SQLite, migrated) database and the UPDATE's answer compared with ``has_room``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hopkit import db
from order_service import limits, repository
from order_service.limits import Limits
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

LIMITS = Limits(max_orders=3, max_units=10)
CASES = [
    (orders, units_held, units)
    for orders in (0, 2, 3, 4)
    for units_held in (0, 5, 9, 10)
    for units in (1, 5, 6, 10, 11)
]


async def test_the_update_and_has_room_agree_on_every_total(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path / 'order.db'}")
    try:
        await db.upgrade(engine, "order_service:alembic")
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        disagreements = []
        for number, (orders, units_held, units) in enumerate(CASES):
            customer = f"customer-{number}"
            async with sessions.begin() as session:
                await session.execute(
                    text(
                        "INSERT INTO customer_holds (customer_id, open_orders, open_units)"
                        " VALUES (:c, :o, :u)"
                    ),
                    {"c": customer, "o": orders, "u": units_held},
                )
            async with sessions.begin() as session:
                taken = await repository.take_hold(
                    session,
                    order_id=f"order-{number}",
                    customer_id=customer,
                    units=units,
                    max_orders=LIMITS.max_orders,
                    max_units=LIMITS.max_units,
                    now=datetime.now(UTC),
                )
            if taken != limits.has_room(orders, units_held, units, LIMITS):
                disagreements.append((orders, units_held, units, taken))
        assert disagreements == []
        # Both answers occur, so the comparison means something.
        answers = {limits.has_room(o, h, u, LIMITS) for o, h, u in CASES}
        assert answers == {True, False}
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("orders", "held", "units", "room"),
    [(2, 5, 5, True), (3, 0, 1, False), (0, 9, 1, True), (0, 9, 2, False)],
)
def test_has_room(orders: int, held: int, units: int, room: bool) -> None:
    assert limits.has_room(orders, held, units, LIMITS) is room
