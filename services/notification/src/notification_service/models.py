"""Database tables of the notification service (SQLAlchemy 2 declarative).

One table of notifications: a customer's own (``recipient`` = their user id,
written by the worker) and broadcasts (``recipient`` NULL, written by support
through the gateway). ``processed_events`` is hopkit's idempotency record,
written in the same transaction as the notification an event caused.
"""

from __future__ import annotations

from datetime import datetime

from hopkit.consumer import processed_events_table
from sqlalchemy import CheckConstraint, DateTime, Index, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints, so migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BROADCAST = "broadcast"
MAX_MESSAGE = 1000

#: The unique index behind "told once": one notification per (recipient, order, kind).
TOLD_INDEX = "uq_notifications_recipient_order_id_kind"
TOLD_COLUMNS = ("recipient", "order_id", "kind")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


processed_events = processed_events_table(Base.metadata)


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The customer's user id (token ``sub``, event ``subject``); NULL for a broadcast.
    recipient: Mapped[str | None] = mapped_column(String(64))
    # The event type that caused it (``order.confirmed`` ...), or ``broadcast``.
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(String(MAX_MESSAGE))
    order_id: Mapped[str | None] = mapped_column(String(64))
    # Where it is delivered, from the user directory; never shown by the API.
    email: Mapped[str | None] = mapped_column(String(320))
    # The event it announces: a second line of defence against a duplicate.
    event_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # A broadcast has no recipient and no order; anything else has a recipient.
        CheckConstraint(
            "(kind = 'broadcast' AND recipient IS NULL AND order_id IS NULL) "
            "OR (kind <> 'broadcast' AND recipient IS NOT NULL)",
            name="broadcast_or_addressed",
        ),
        # A customer's list: theirs and the broadcasts, newest first.
        Index("ix_notifications_recipient_created_at", "recipient", "created_at"),
        # A customer is told each kind of news about an order once, even when two copies
        # of an event (different event ids) are handled at the same time. NULLs are
        # distinct (SQLite, PostgreSQL), so broadcasts are not limited by it.
        Index(TOLD_INDEX, *TOLD_COLUMNS, unique=True),
    )
