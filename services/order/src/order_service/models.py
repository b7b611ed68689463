"""Database tables of the order service (SQLAlchemy 2 declarative).

Besides the orders, the metadata holds hopkit's ``outbox`` (events stored in
the transaction of the change they announce) and ``processed_events`` (ids of
the Kafka events already applied), so Alembic migrates all of them together.

``holds`` and ``customer_holds`` count what unpaid orders hold, per customer,
against the limits on open orders and units (see :mod:`order_service.limits`).
``idempotency_keys`` remembers which order a customer's ``Idempotency-Key``
placed (see :mod:`order_service.idempotency`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from hopkit.consumer import processed_events_table
from hopkit.outbox import outbox_table
from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

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


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "PENDING_PAYMENT"  # stock reserved, waiting for billing
    CONFIRMED = "CONFIRMED"  # paid; the reservation is committed at inventory
    CANCELLED = "CANCELLED"  # see CancelReason; the reservation is released


class CancelReason(StrEnum):
    PAYMENT_DECLINED = "payment_declined"
    CUSTOMER = "customer"
    EXPIRED = "expired"


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The user the order belongs to: the token's `sub`, the only owner check there is.
    customer_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    total_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    # First six and last four digits only: the whole number is never stored.
    card_masked: Mapped[str] = mapped_column(String(19))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    items: Mapped[list[OrderItem]] = relationship(order_by="OrderItem.product_id", lazy="raise")

    __table_args__ = (
        CheckConstraint(
            "status IN ('PENDING_PAYMENT', 'CONFIRMED', 'CANCELLED')", name="status_known"
        ),
        CheckConstraint(
            "(status = 'CANCELLED') = (reason IS NOT NULL)", name="reason_iff_cancelled"
        ),
        CheckConstraint("total_cents >= 0", name="total_not_negative"),
        # A customer's list, newest first.
        Index("ix_orders_customer_id_created_at", "customer_id", "created_at"),
        # The expiry job: oldest pending orders first.
        Index("ix_orders_status_created_at", "status", "created_at"),
    )


class OrderItem(Base):
    """One line per product, with the catalogue's name and price at the time of the order."""

    __tablename__ = "order_items"

    order_id: Mapped[str] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_cents >= 0", name="price_not_negative"),
    )


class Hold(Base):
    """One unpaid order counted against its customer's limits (see :mod:`order_service.limits`).

    Taken before the stock is reserved, so it may exist before its order does
    (and, after a crash, without one). Giving it back deletes the row: whoever
    deletes it decrements the customer's totals, so it is never given back twice.
    """

    __tablename__ = "holds"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255))
    units: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("units > 0", name="units_positive"),
        # The expiry job's sweep for holds left behind by a placement that never finished.
        Index("ix_holds_taken_at", "taken_at"),
    )


class CustomerHolds(Base):
    """A customer's totals over their holds: the row the limit check updates conditionally."""

    __tablename__ = "customer_holds"

    customer_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    open_orders: Mapped[int] = mapped_column(Integer)
    open_units: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("open_orders >= 0", name="open_orders_not_negative"),
        CheckConstraint("open_units >= 0", name="open_units_not_negative"),
    )


class IdempotencyKey(Base):
    """A customer's ``Idempotency-Key`` and the order it places (:mod:`order_service.idempotency`).

    Claimed before the placement takes a hold, so it exists before its order
    does (no foreign key): while the order is missing, the placement is in
    flight. The primary key is what decides between concurrent placements
    with the same key.
    """

    __tablename__ = "idempotency_keys"

    # The token's `sub`: one customer's key never meets another's.
    customer_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # sha256 (hex) of the request as placed: items and the masked card, never the number.
    fingerprint: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # The expiry job's sweep for keys past their retention.
        Index("ix_idempotency_keys_created_at", "created_at"),
    )
