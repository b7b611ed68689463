"""Database tables of the billing service (SQLAlchemy 2 declarative).

Besides ``invoices``, the metadata holds hopkit's ``outbox`` (payment events
stored with the invoice they announce) and ``processed_events`` (the
``order.placed`` events already handled), so the migrations create all three
and one transaction can write all three.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from hopkit.consumer import processed_events_table
from hopkit.outbox import outbox_table
from sqlalchemy import CheckConstraint, DateTime, Index, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints, so migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


outbox = outbox_table(Base.metadata)
processed_events = processed_events_table(Base.metadata)


class InvoiceStatus(StrEnum):
    PAID = "PAID"  # the provider took the money
    DECLINED = "DECLINED"  # the provider refused the card; nobody was charged
    REFUNDED = "REFUNDED"  # paid, then given back: the order was cancelled before it was paid


class Invoice(Base):
    """One charge attempt for one order: an order is invoiced at most once."""

    __tablename__ = "invoices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The uniqueness that makes a second order.placed for the same order (another event
    # id, a replay, a forgery) unable to charge again, whatever the code above it does.
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    # The customer (the order's customer_id as the order service says, never the event's).
    customer_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    # Why the provider declined (``card_declined``); null when paid.
    decline_reason: Mapped[str | None] = mapped_column(String(64))
    # The provider's id of the charge attempt, for reconciliation with its records.
    provider_reference: Mapped[str] = mapped_column(String(64))
    # The provider's id of the refund, once the invoice is REFUNDED; null before.
    refund_reference: Mapped[str | None] = mapped_column(String(64))
    # The order.placed event that caused the charge: the audit trail back to Kafka.
    event_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('PAID', 'DECLINED', 'REFUNDED')", name="status_known"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("length(currency) = 3", name="currency_code"),
        Index("ix_invoices_customer_id_created_at", "customer_id", "created_at"),
    )
