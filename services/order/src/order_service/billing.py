"""Billing as the order service sees it: the record a payment event is checked against.

Anyone who can write to Kafka can write a ``payment.succeeded`` that names a
real order and its total (the customer knows both). So the payment consumer
believes no payment event: it asks billing, which owns payments, with the
order service's own client-credentials token (client ``order``, aud
``billing``, ``payments:verify``; no user is behind a Kafka event), for
``GET /internal/orders/{id}/payment`` and acts on that answer alone
(docs/internal-api.md).

The same client gives a payment back (``POST /internal/orders/{id}/refund``,
``payments:refund``) when billing confirms a payment for an order cancelled
before the payment reached it. Billing makes the refund idempotent, so a
retried or redelivered event asks again safely.

The expiry job asks the same question with a token of its own (client
``order-scheduler``, :data:`SCHEDULER_SCOPES`: ``payments:verify`` only, it
never refunds) when inventory says an overdue order's stock was sold: was the
order paid after all, its ``payment.succeeded`` lost (:mod:`order_service.expiry`)?
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

import httpx
from hopauth import HopAuthError
from hopkit.events import DependencyUnavailable
from pydantic import BaseModel, ConfigDict, Field, ValidationError

AUDIENCE = "billing"
# One token for both calls: order asks for a refund only of a payment billing just vouched for.
SCOPES = ("payments:verify", "payments:refund")
#: The expiry job's scopes at billing: it reads payments, it gives none back.
SCHEDULER_SCOPES = ("payments:verify",)
#: Billing's problem for an order it has no payment for. A 404 without it (a wrong base URL,
#: a route that moved) proves nothing about the payment, so it is retried instead.
PAYMENT_NOT_FOUND = "https://hopshop.example/problems/payment-not-found"

SUCCEEDED = "succeeded"
FAILED = "failed"


class BillingUnavailable(DependencyUnavailable):
    """Billing gave no usable answer this time (down, refused our token, odd body): retry."""


class _PaymentOut(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    order_id: str
    invoice_id: str = Field(min_length=1, max_length=64)
    status: Literal["succeeded", "failed"]
    amount_cents: int
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    refunded: bool = False


class _RefundOut(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    order_id: str
    invoice_id: str = Field(min_length=1, max_length=64)
    status: Literal["REFUNDED"]
    refund_reference: str = Field(min_length=1, max_length=64)


@dataclass(frozen=True, slots=True)
class Refund:
    """A payment billing gave back: its invoice is REFUNDED."""

    order_id: str
    invoice_id: str
    refund_reference: str


@dataclass(frozen=True, slots=True)
class Payment:
    """A payment as billing recorded it; ``status`` names the event it emitted for it."""

    order_id: str
    invoice_id: str
    status: str  # SUCCEEDED or FAILED
    amount_cents: int
    currency: str
    #: Billing gave it back (a refunded payment still ``succeeded``: it happened).
    refunded: bool = False


class Billing:
    """Reads billing's payment records; ``http`` has billing's base URL and order's token auth."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def _send(self, method: str, order_id: str, action: str) -> httpx.Response:
        """``method /internal/orders/{order_id}/{action}``; no answer is BillingUnavailable."""
        try:
            return await self._http.request(
                method, f"/internal/orders/{quote(order_id, safe='')}/{action}"
            )
        except HopAuthError as exc:
            # The issuer refused us a token: a policy or secret problem (hopauth logged why).
            raise BillingUnavailable(f"no token for billing: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise BillingUnavailable(f"billing unreachable: {type(exc).__name__}") from None

    async def payment(self, order_id: str) -> Payment | None:
        """What billing recorded for the order, or None when it charged nothing for it.

        ``order_id`` was checked against the order id pattern by the caller and
        is quoted anyway: an id from a message never steers our token elsewhere.
        """
        response = await self._send("GET", order_id, "payment")
        if response.status_code == 404 and _problem_type(response) == PAYMENT_NOT_FOUND:
            return None
        if response.status_code != 200:
            raise BillingUnavailable(f"billing answered {response.status_code}")
        try:
            found = _PaymentOut.model_validate_json(response.content)
        except ValidationError:
            raise BillingUnavailable("billing answered 200 with an unusable body") from None
        if found.order_id != order_id:
            raise BillingUnavailable("billing answered for another order")
        return Payment(
            order_id=found.order_id,
            invoice_id=found.invoice_id,
            status=found.status,
            amount_cents=found.amount_cents,
            currency=found.currency,
            refunded=found.refunded,
        )

    async def refund(self, order_id: str) -> Refund:
        """Have billing give back the order's payment; the same answer every time it is asked.

        Anything but billing's 200 raises :class:`BillingUnavailable`, so the
        consumer retries: a refund owed is never dropped. ``order_id`` is
        quoted as in :meth:`payment`.
        """
        response = await self._send("POST", order_id, "refund")
        if response.status_code != 200:
            raise BillingUnavailable(f"billing answered {response.status_code} to the refund")
        try:
            done = _RefundOut.model_validate_json(response.content)
        except ValidationError:
            raise BillingUnavailable("billing answered 200 with an unusable body") from None
        if done.order_id != order_id:
            raise BillingUnavailable("billing refunded another order")
        return Refund(
            order_id=done.order_id,
            invoice_id=done.invoice_id,
            refund_reference=done.refund_reference,
        )


def _problem_type(response: httpx.Response) -> str | None:
    if response.headers.get("content-type", "").split(";")[0] != "application/problem+json":
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    kind = body.get("type") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) else None
