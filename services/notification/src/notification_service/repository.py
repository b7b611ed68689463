"""All the SQL of the notification service. Functions take the session; none commits."""

from __future__ import annotations

from hopkit.db import insert_unless_present
from sqlalchemy import ColumnElement, Select, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import TOLD_COLUMNS, Notification


async def add(session: AsyncSession, notification: Notification) -> None:
    session.add(notification)
    # Flush now, so a constraint violation surfaces here, inside the caller's transaction.
    await session.flush()


async def add_unless_told(session: AsyncSession, notification: Notification) -> bool:
    """Insert a customer's ``notification``; False when they have one of that kind about
    that order already (the unique index on recipient, order and kind said so).

    ``INSERT ... ON CONFLICT (recipient, order_id, kind) DO NOTHING``: only that
    index's conflict is absorbed, any other violation still raises. On
    PostgreSQL a concurrent insert of the same key is waited for: it commits
    (False here) or rolls back (inserted here). On SQLite the write lock
    serializes the two. The transaction stays usable either way (no error,
    no SAVEPOINT). ``notification`` is not added to the session.
    """
    columns = Notification.__table__.c
    values = {column.key: getattr(notification, column.key) for column in columns}
    return await insert_unless_present(session, Notification, values, TOLD_COLUMNS)


async def for_recipient(
    session: AsyncSession, recipient: str, limit: int, broadcasts: int
) -> list[Notification]:
    """The recipient's newest ``limit`` notifications and the newest ``broadcasts``
    broadcasts, merged newest first.

    Two queries, each with its own limit (both served by the index on
    recipient and time; a broadcast's recipient is NULL): however many
    broadcasts there are, they cannot push a customer's own out of the list.
    """
    own = await session.scalars(_newest(Notification.recipient == recipient, limit))
    shared = await session.scalars(_newest(Notification.recipient.is_(None), broadcasts))
    rows = [*own, *shared]
    rows.sort(key=lambda row: (row.created_at, row.id), reverse=True)
    return rows


def _newest(where: ColumnElement[bool], limit: int) -> Select[Notification]:
    return (
        select(Notification)
        .where(where)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
    )


async def told(session: AsyncSession, recipient: str, order_id: str, kind: str) -> bool:
    """Has ``recipient`` a notification of ``kind`` about ``order_id`` already?"""
    statement = select(
        exists().where(
            Notification.recipient == recipient,
            Notification.order_id == order_id,
            Notification.kind == kind,
        )
    )
    return bool(await session.scalar(statement))
