"""Request and response bodies (pydantic). Requests are strict: unknown fields and
numbers sent as strings are refused with a 422 naming the field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# Database integers are 32-bit on PostgreSQL: larger ids can never exist.
MAX_ID = 2**31 - 1
MAX_QUANTITY = 1000
ORDER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"

ProductId = Annotated[int, Field(ge=1, le=MAX_ID, strict=True, examples=[1])]
OrderId = Annotated[
    str,
    Field(
        pattern=ORDER_ID_PATTERN,
        description="The order's id: 1-64 characters, letters, digits and . _ : -",
        examples=["ord_7f3c2a"],
    ),
]
Status = Literal["RESERVED", "RELEASED", "COMMITTED"]


class ProductOut(BaseModel):
    id: int
    sku: str
    name: str
    price_cents: int
    currency: str = Field(description="ISO 4217 code")
    available: int = Field(description="units on hand minus units held by active reservations")
    max_held_per_customer: int | None = Field(
        description="units one customer's unpaid orders may hold together (null: no cap "
        "beyond order's limits on unpaid orders)"
    )


class ReservationLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: ProductId
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY, strict=True, examples=[2])]


class ReservationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: OrderId
    items: list[ReservationLine] = Field(min_length=1, max_length=100)


class ReservationOut(BaseModel):
    reservation_id: str
    order_id: str
    status: Status
    items: list[ReservationLine] = Field(
        description="one line per product, in product order (repeated products added up)"
    )
