"""Business logic: storing notifications and reading a customer's list.

Functions take the session and plain values; the caller owns the transaction
(the request's session dependency, or the event consumer, which records the
event as processed in the same transaction), so an error raised here rolls
back everything the call did.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from . import repository
from .directory import UserDirectory
from .messages import Claim, CustomerNote, note_for
from .models import BROADCAST, Notification
from .owners import Owners

log = logging.getLogger(__name__)


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


async def list_for(
    session: AsyncSession, user_id: str, limit: int, broadcasts: int
) -> list[NotificationView]:
    """What ``user_id`` sees, newest first: their newest ``limit`` notifications and the
    newest ``broadcasts`` broadcasts, each counted apart (a flood of broadcasts cannot
    bury a customer's own)."""
    rows = await repository.for_recipient(session, user_id, limit, broadcasts)
    return [_view(row) for row in rows]


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


async def notify_about(
    session: AsyncSession, claim: Claim, owners: Owners, directory: UserDirectory
) -> NotificationView | None:
    """Tell the customer what ``claim`` says, if its owner confirms it; None if nobody is told.

    The owning service is asked first (:mod:`notification_service.owners`) and
    the message is worded from its answer. An event it does not confirm (forged,
    or about someone else's order) tells nobody anything: a warning is logged
    and None returned; the worker then records nothing (hopkit's NoEffect). A
    customer already told this about this order is not told again (a copy of a
    true event under a new id): a read spares the directory call, and the
    unique index decides when two copies are handled at once (:func:`notify`).
    Raises :class:`~notification_service.owners.OwnerUnavailable` and what
    :func:`notify` raises.
    """
    verdict = await owners.check(claim)
    if verdict.refusal is not None:
        log.warning(
            "event not confirmed by its owner; nobody notified",
            extra={"event_id": claim.event_id, "type": claim.kind, "reason": verdict.refusal},
        )
        return None
    if await repository.told(session, claim.recipient, claim.order_id, claim.kind):
        _already_told(claim.event_id, claim.kind, claim.order_id)
        return None
    return await notify(session, note_for(claim, verdict.facts), directory)


async def notify(
    session: AsyncSession, note: CustomerNote, directory: UserDirectory
) -> NotificationView | None:
    """Store ``note`` for its customer, addressed to the contact the directory has for them.

    None when the customer has a notification of that kind about that order
    already, though the read in :func:`notify_about` found none: a copy of the
    event (another event id) was handled at the same time and committed first.
    The unique index on (recipient, order_id, kind) catches that, and the
    transaction is left unchanged. Raises :class:`UnknownCustomer` when the
    directory has no such user, and whatever the directory raises when it
    cannot answer now (worth a retry).
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
    if not await repository.add_unless_told(session, notification):
        _already_told(note.event_id, note.kind, note.order_id)
        return None
    return _view(notification)


def _already_told(event_id: str, kind: str, order_id: str) -> None:
    log.info(
        "customer already told; event changes nothing",
        extra={"event_id": event_id, "type": kind, "order_id": order_id},
    )


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
