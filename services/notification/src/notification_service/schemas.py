"""Request and response bodies (pydantic). Requests are strict: unknown fields and
non-string messages are refused with a 422 naming the field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from hopkit.text import PLAIN_TEXT
from pydantic import BaseModel, ConfigDict, Field

from .models import MAX_MESSAGE

# Shown to every customer as stored: hopkit.text refuses controls (PostgreSQL refuses
# NUL), bidi overrides and zero-width characters rather than rewriting them, then trims.
# The gateway applies the same rule; this service owns the data, so it checks too.
Message = Annotated[
    str,
    Field(
        max_length=MAX_MESSAGE,
        description="What every customer is told: letters, marks, numbers, punctuation, "
        "symbols and spaces of any script, newlines and tabs; trimmed",
        examples=["The shop closes at 18:00 today."],
    ),
    PLAIN_TEXT,
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
