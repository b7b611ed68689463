"""Request and response bodies (pydantic). Requests are strict: unknown fields and
non-string messages are refused with a 422 naming the field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .models import MAX_MESSAGE

# Control characters other than tab and newline: PostgreSQL refuses NUL in text, and
# none of them belongs in a message shown to customers.
_PRINTABLE = r"^[^\x00-\x08\x0b-\x1f\x7f]*$"

Message = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE, pattern=_PRINTABLE
    ),
    Field(description="What every customer is told", examples=["The shop closes at 18:00 today."]),
]


class BroadcastIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    message: Message


class NotificationOut(BaseModel):
    id: str
    kind: str = Field(description="the event that caused it (`order.confirmed` ...) or `broadcast`")
    message: str
    order_id: str | None
    created_at: datetime
    broadcast: bool = Field(description="true: addressed to every customer")
