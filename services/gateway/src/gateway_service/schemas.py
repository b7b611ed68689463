"""Public request and response bodies (DESIGN.md, "Public API at the gateway").

Requests are strict: unknown fields, numbers sent as strings and oversized
lists are refused here with a 422 naming the field, before any token is
exchanged or any service called. Responses are checked for the fields the
public contract promises; fields the owning service adds beyond them pass
through (``extra="allow"``), so the gateway does not have to change with
every field a service gains.
"""

from __future__ import annotations

from typing import Annotated

from hopkit.text import PLAIN_TEXT
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

MAX_ID = 2**31 - 1
MAX_QUANTITY = 1000
#: Lines per order, as the order service accepts: more is refused here, before a token exchange.
MAX_LINES = 50
#: Characters per broadcast, as the notification service accepts.
MAX_BROADCAST = 1000
#: Order ids as the order and inventory services accept them. Checked at the edge,
#: so no path trickery (``..``, ``%2F``) ever reaches a service behind us.
ORDER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
#: Ids of records owned by other services: whatever JSON type their owner chose.
Id = int | str


class ProductOut(BaseModel):
    id: int
    sku: str
    name: str
    price_cents: int
    currency: str = Field(description="ISO 4217 code")
    available: int = Field(description="units that can be ordered now")
    max_held_per_customer: int | None = Field(
        default=None,
        description="units of it one customer's unpaid orders may hold (null: no such cap)",
    )


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: Annotated[int, Field(ge=1, le=MAX_ID, strict=True, examples=[1])]
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY, strict=True, examples=[2])]


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[OrderLine] = Field(min_length=1, max_length=MAX_LINES)
    card: str = Field(
        pattern=r"^[0-9]{12,19}$",
        description="A test card number, digits only. 4000000000000002 is always declined; "
        "4000000000003063 waits for a cardholder authentication that never comes (the order "
        "stays unpaid until it expires); other valid numbers pay.",
        examples=["4242424242424242"],
    )


class OrderItemOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    product_id: int
    quantity: int


class OrderOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: Id
    status: str = Field(description="PENDING_PAYMENT, CONFIRMED or CANCELLED")
    items: list[OrderItemOut]
    total_cents: int
    currency: str
    created_at: str


class OrderOwner(BaseModel):
    """Order's answer to support staff's owner lookup (never sent to the client)."""

    order_id: Id
    customer_id: str = Field(min_length=1, max_length=64, description="the owner's user id")


class InvoiceOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: Id
    order_id: Id
    status: str = Field(description="PAID, DECLINED or REFUNDED")
    amount_cents: int
    currency: str
    created_at: str


class NotificationOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: Id
    kind: str
    message: str
    order_id: Id | None = None
    created_at: str
    broadcast: bool = False


class BroadcastIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Shown to every customer: hidden, reordering and control characters are refused
    # here, at the edge, by the rule notification (the owner) applies too (hopkit.text).
    message: Annotated[str, Field(max_length=MAX_BROADCAST), PLAIN_TEXT]


class BroadcastOut(BaseModel):
    model_config = ConfigDict(extra="allow")


PRODUCTS = TypeAdapter(list[ProductOut])
ORDER = TypeAdapter(OrderOut)
ORDERS = TypeAdapter(list[OrderOut])
ORDER_OWNER = TypeAdapter(OrderOwner)
INVOICES = TypeAdapter(list[InvoiceOut])
NOTIFICATIONS = TypeAdapter(list[NotificationOut])
BROADCAST = TypeAdapter(BroadcastOut)
