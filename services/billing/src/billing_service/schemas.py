"""Shapes billing reads and writes: its API's answers, the event it consumes, the order it fetches.

What comes from outside (an ``order.placed`` event, the order service's
answer) is parsed strictly here, so the service layer only ever sees values
that fit: an order id that is safe in a URL path, an amount that is an
integer, a card that is masked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Order ids as the other services accept them: also safe as one URL path segment.
ORDER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
OrderId = Annotated[str, Field(pattern=ORDER_ID_PATTERN)]

PENDING_PAYMENT = "PENDING_PAYMENT"


class InvoiceOut(BaseModel):
    id: str
    order_id: str
    status: Literal["PAID", "DECLINED", "REFUNDED"]
    amount_cents: int
    currency: str = Field(description="ISO 4217 code")
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, moment: datetime) -> datetime:
        """SQLite hands back naive datetimes; every time billing stores is UTC."""
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class PaymentOut(BaseModel):
    """A payment as billing recorded it (its invoice): what a payment event may claim.

    ``status`` is named after the event billing emitted for it:
    ``succeeded`` (``payment.succeeded``, invoice ``PAID``, or ``REFUNDED``
    since: the payment happened, and was given back) or ``failed``
    (``payment.failed``, invoice ``DECLINED``).
    """

    order_id: str
    invoice_id: str
    status: Literal["succeeded", "failed"]
    amount_cents: int
    currency: str = Field(description="ISO 4217 code")
    customer_id: str = Field(description="The customer charged, as the order service said")
    reason: str | None = Field(description="Why the provider declined; null when paid")
    refunded: bool = Field(
        description="True once billing gave the payment back (invoice `REFUNDED`, "
        "`payment.refunded`): what a refund event is checked against"
    )


class RefundOut(BaseModel):
    """A payment given back: the answer to ``POST /internal/orders/{id}/refund``, every time."""

    order_id: str
    invoice_id: str
    status: Literal["REFUNDED"] = Field(description="The invoice's status, now")
    amount_cents: int = Field(description="What was given back: the whole payment")
    currency: str = Field(description="ISO 4217 code")
    refund_reference: str = Field(description="The provider's id of the refund")


class OrderPlacedData(BaseModel):
    """``data`` of an ``order.placed`` event: the order id is all billing takes from it."""

    model_config = ConfigDict(strict=True, extra="ignore")

    order_id: OrderId


class OrderCard(BaseModel):
    model_config = ConfigDict(extra="ignore")

    masked: str = Field(max_length=32)


class Order(BaseModel):
    """The authoritative order, as ``GET /internal/orders/{id}`` answers (docs/internal-api.md).

    Only the fields billing needs; the rest is ignored, so order may add fields freely.
    """

    model_config = ConfigDict(strict=True, extra="ignore")

    id: OrderId
    status: str = Field(max_length=32)
    customer_id: str = Field(min_length=1, max_length=255)
    total_cents: int
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    card: OrderCard
