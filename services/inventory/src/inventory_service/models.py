"""Database tables of the inventory service (SQLAlchemy 2 declarative).

Stock is kept apart from the catalogue: ``stock.reserved`` is the hot counter
every reservation updates, ``products`` is read-mostly.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
)
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


class ReservationStatus(StrEnum):
    RESERVED = "RESERVED"  # units held for an order awaiting payment
    RELEASED = "RELEASED"  # units back on sale (order cancelled or expired)
    COMMITTED = "COMMITTED"  # units sold: they have left the stock


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    # Units of this product one subject's unpaid (RESERVED) reservations may hold
    # together; NULL: no cap beyond order's limits on a customer's unpaid orders.
    max_held_per_customer: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="price_not_negative"),
        CheckConstraint("length(currency) = 3", name="currency_code"),
    )


class Stock(Base):
    """Units on hand (``quantity``) and units held by active reservations (``reserved``)."""

    __tablename__ = "stock"

    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        # The database itself refuses to oversell, whatever the code above it does.
        CheckConstraint("reserved <= quantity", name="reserved_within_quantity"),
    )


class Reservation(Base):
    __tablename__ = "reservations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # One reservation per order: the order id is the idempotency key.
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    # The user the order is for (token ``sub``), for the audit trail.
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    items: Mapped[list[ReservationItem]] = relationship(
        order_by="ReservationItem.product_id", lazy="raise"
    )

    __table_args__ = (
        CheckConstraint("status IN ('RESERVED', 'RELEASED', 'COMMITTED')", name="status_known"),
        # What one subject holds unpaid (service.reserve's cap): found without a scan.
        Index("ix_reservations_subject_status", "subject", "status"),
    )


class ReservationItem(Base):
    __tablename__ = "reservation_items"

    reservation_id: Mapped[str] = mapped_column(
        ForeignKey("reservations.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)
