"""All the SQL of the notification service. Functions take the session; none commits."""

from __future__ import annotations

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Notification


async def add(session: AsyncSession, notification: Notification) -> None:
    session.add(notification)
    # Flush now, so a constraint violation surfaces here, inside the caller's transaction.
    await session.flush()


async def for_recipient(session: AsyncSession, recipient: str, limit: int) -> list[Notification]:
    """The recipient's own notifications and every broadcast, newest first."""
    statement = (
        select(Notification)
        .where(or_(Notification.recipient == recipient, Notification.recipient.is_(None)))
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
    )
    return list(await session.scalars(statement))


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
