"""Business logic: storing notifications and reading a customer's list.

Functions take the session and plain values; the caller owns the transaction
(the request's session dependency, or the event consumer, which records the
event as processed in the same transaction), so an error raised here rolls
back everything the call did.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from . import repository
from .directory import UserDirectory
from .messages import CustomerNote
from .models import BROADCAST, Notification


@dataclass(frozen=True, slots=True)
class NotificationView:
    id: str
    kind: str
    message: str
    order_id: str | None
    created_at: datetime
    broadcast: bool


class UnknownCustomer(Exception):
    """The user directory does not know the event's subject: nobody to notify."""


async def list_for(session: AsyncSession, user_id: str, limit: int) -> list[NotificationView]:
    """What ``user_id`` sees: their own notifications and the broadcasts, newest first."""
    return [_view(row) for row in await repository.for_recipient(session, user_id, limit)]


async def broadcast(session: AsyncSession, message: str) -> NotificationView:
    """A notification for every customer. It names no user: none is behind a broadcast."""
    notification = Notification(
        id=str(uuid.uuid4()),
        recipient=None,
        kind=BROADCAST,
        message=message,
        order_id=None,
        email=None,
        event_id=None,
        created_at=datetime.now(UTC),
    )
    await repository.add(session, notification)
    return _view(notification)


async def notify(
    session: AsyncSession, note: CustomerNote, directory: UserDirectory
) -> NotificationView:
    """Store ``note`` for its customer, addressed to the contact the directory has for them.

    Raises :class:`UnknownCustomer` when the directory has no such user, and
    whatever the directory raises when it cannot answer now (worth a retry).
    """
    contact = await directory.contact(note.recipient)
    if contact is None:
        raise UnknownCustomer(note.recipient)
    notification = Notification(
        id=str(uuid.uuid4()),
        recipient=note.recipient,
        kind=note.kind,
        message=note.message,
        order_id=note.order_id,
        email=contact.email,
        event_id=note.event_id,
        created_at=datetime.now(UTC),
    )
    await repository.add(session, notification)
    return _view(notification)


def _view(row: Notification) -> NotificationView:
    created_at = row.created_at
    if created_at.tzinfo is None:  # SQLite keeps no offset; we only ever store UTC
        created_at = created_at.replace(tzinfo=UTC)
    return NotificationView(
        id=row.id,
        kind=row.kind,
        message=row.message,
        order_id=row.order_id,
        created_at=created_at,
        broadcast=row.recipient is None,
    )
