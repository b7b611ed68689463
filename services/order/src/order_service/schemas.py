"""Request and response bodies (pydantic). Requests are strict: unknown fields and
numbers sent as strings are refused with a 422 naming the field, never the card."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import cards

# Database integers are 32-bit on PostgreSQL: larger ids can never exist.
MAX_ID = 2**31 - 1
MAX_QUANTITY = 1000
MAX_LINES = 50
# Order ids are ours (`ord_<hex>`); the pattern also fits inventory's order ids.
ORDER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"

Status = Literal["PENDING_PAYMENT", "CONFIRMED", "CANCELLED"]
Reason = Literal["payment_declined", "customer", "expired"]


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: Annotated[int, Field(ge=1, le=MAX_ID, strict=True, examples=[1])]
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY, strict=True, examples=[2])]


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[OrderLineIn] = Field(min_length=1, max_length=MAX_LINES)
    card: str = Field(
        max_length=32,
        strict=True,
        description="16 digits (Luhn-valid); only the masked form is kept",
        examples=["4242424242424242"],
        json_schema_extra={"writeOnly": True},
    )

    @field_validator("card")
    @classmethod
    def _card(cls, value: str) -> str:
        return cards.normalise(value)


class OrderLineOut(BaseModel):
    product_id: int
    sku: str
    name: str
    quantity: int
    unit_price_cents: int


class CardOut(BaseModel):
    masked: str = Field(examples=["400000******0002"])


class OrderOut(BaseModel):
    id: str
    status: Status
    reason: Reason | None = Field(description="why a CANCELLED order was cancelled")
    customer_id: str = Field(description="the customer's user id (token `sub`)")
    items: list[OrderLineOut]
    total_cents: int
    currency: str = Field(description="ISO 4217 code")
    card: CardOut
    created_at: datetime
    updated_at: datetime


class OrderOwnerOut(BaseModel):
    """Who owns an order, and nothing else: what support staff need to act for the owner."""

    order_id: str
    customer_id: str = Field(description="the customer's user id (token `sub`)")


class OrderStatusOut(BaseModel):
    """An order's state and owner, and nothing else: what the notification worker checks an
    ``order.*`` event against (no amount, no items, no card)."""

    id: str
    customer_id: str = Field(description="the customer's user id (token `sub`)")
    status: Status
    reason: Reason | None = Field(description="why a CANCELLED order was cancelled")
