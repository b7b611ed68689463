"""Business logic: reading invoices and payments, and settling a placed order.

Functions take the session and plain values; the caller owns the
transaction (the request's session dependency, or the event consumer), so
the invoice, its payment event in the outbox and the consumed event's id
commit together or not at all.

Settling trusts nothing from the ``order.placed`` event but the order id.
What to charge, to whom, and whether to charge at all comes from the order
service: an event can be forged or replayed, the order service's answer is
the authority.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from hopkit.events import PAYMENT_FAILED, PAYMENT_REFUNDED, PAYMENT_SUCCEEDED, Envelope
from hopkit.outbox import add_to_outbox
from hopkit.problems import Problem
from sqlalchemy.ext.asyncio import AsyncSession

from . import repository
from .config import PRODUCER
from .models import Invoice, InvoiceStatus
from .orders import OrderClient
from .provider import SimulatedProvider
from .schemas import PENDING_PAYMENT

log = logging.getLogger(__name__)

PROBLEMS = "https://hopshop.example/problems/"
#: The problem for an order billing has no payment for; its callers tell it from a wrong URL.
PAYMENT_NOT_FOUND = PROBLEMS + "payment-not-found"
#: The problem for a refund of an invoice that holds no payment to give back (DECLINED).
NOT_REFUNDABLE = PROBLEMS + "payment-not-refundable"


class Outcome(StrEnum):
    PAID = "paid"
    DECLINED = "declined"
    ALREADY_INVOICED = "already-invoiced"  # another event for an order charged before
    ORDER_NOT_FOUND = "order-not-found"  # the order service does not know the order
    NOT_PAYABLE = "not-payable"  # the order exists but is not awaiting payment
    AWAITING_CUSTOMER = "awaiting-customer"  # the card needs the cardholder to authenticate


@dataclass(frozen=True, slots=True)
class Settlement:
    outcome: Outcome
    invoice: Invoice | None = None
    order_status: str | None = None

    @property
    def charged(self) -> bool:
        return self.outcome in (Outcome.PAID, Outcome.DECLINED)


async def list_invoices(session: AsyncSession, customer_id: str) -> list[Invoice]:
    return await repository.invoices_of(session, customer_id)


async def payment_for_order(session: AsyncSession, order_id: str) -> Invoice:
    """The payment billing recorded for ``order_id``: the truth a payment event is checked against.

    A 404 problem (:data:`PAYMENT_NOT_FOUND`) when billing charged nothing for
    the order (unknown, not yet charged, or awaiting the cardholder): then no
    ``payment.*`` event about it came from billing.
    """
    invoice = await repository.invoice_for_order(session, order_id)
    if invoice is None:
        raise Problem(
            404,
            "Payment not found",
            f"billing has no payment for order {order_id!r}",
            type_=PAYMENT_NOT_FOUND,
            order_id=order_id,
        )
    return invoice


async def refund_order(
    session: AsyncSession, order_id: str, provider: SimulatedProvider
) -> Invoice:
    """Give back the payment for ``order_id``: the provider refunds it, the invoice is REFUNDED.

    The compensation for a payment that reached order after the order was
    cancelled (docs/internal-api.md). The change to REFUNDED puts a
    ``payment.refunded`` event in the outbox, in the caller's transaction, so
    the customer hears of the refund exactly when it is recorded. Idempotent:
    an invoice already REFUNDED is answered as it is, nobody is refunded twice
    and no second event is written. A 404 problem
    (:data:`PAYMENT_NOT_FOUND`) when billing charged nothing for the order, a
    409 (:data:`NOT_REFUNDABLE`) when its invoice holds no payment (DECLINED).
    The provider is idempotent on the order id too, so two refunds racing on
    one invoice give the money back once and both answer the same.
    """
    invoice = await payment_for_order(session, order_id)
    if invoice.status == InvoiceStatus.REFUNDED:
        return invoice
    if invoice.status != InvoiceStatus.PAID:
        raise Problem(
            409,
            "Payment not refundable",
            f"the invoice of order {order_id!r} is {invoice.status}: there is nothing to give back",
            type_=NOT_REFUNDABLE,
            order_id=order_id,
            invoice_status=invoice.status,
        )
    refund = provider.refund(
        charge_reference=invoice.provider_reference,
        amount_cents=invoice.amount_cents,
        currency=invoice.currency,
        idempotency_key=order_id,
    )
    changed = await repository.mark_refunded(session, invoice.id, refund.reference)
    await session.refresh(invoice)
    if not changed:
        # A concurrent refund changed it first and wrote the event: answer as it is.
        return invoice
    await _announce_refund(session, invoice)
    log.info(
        "payment refunded",
        extra={"order_id": order_id, "invoice_id": invoice.id, "amount_cents": refund.amount_cents},
    )
    return invoice


async def settle_order(
    session: AsyncSession,
    *,
    order_id: str,
    event_id: str,
    orders: OrderClient,
    provider: SimulatedProvider,
) -> Settlement:
    """Charge a placed order once: invoice it and announce the payment, or charge nobody.

    Nobody is charged when the order already has an invoice (a redelivered or
    duplicated event), when the order service does not know the order (a
    forged event), or when the order is no longer awaiting payment (cancelled,
    expired, or paid). Raises :class:`~billing_service.orders.OrderServiceError`
    when the order service gives no answer (the caller retries) and
    :class:`~billing_service.orders.UnusableOrder` or
    :class:`~billing_service.provider.InvalidCharge` when no retry can help.
    """
    existing = await repository.invoice_for_order(session, order_id)
    if existing is not None:
        log.info(
            "order already invoiced; nobody charged again",
            extra={"order_id": order_id, "invoice_id": existing.id},
        )
        return Settlement(Outcome.ALREADY_INVOICED, existing)

    order = await orders.fetch(order_id)
    if order is None:
        log.warning(
            "order.placed for an order the order service does not know; nobody charged",
            extra={"order_id": order_id, "event_id": event_id},
        )
        return Settlement(Outcome.ORDER_NOT_FOUND)
    if order.status != PENDING_PAYMENT:
        log.info(
            "order is not awaiting payment; nobody charged",
            extra={"order_id": order_id, "order_status": order.status},
        )
        return Settlement(Outcome.NOT_PAYABLE, order_status=order.status)

    charge = provider.charge(
        masked_card=order.card.masked,
        amount_cents=order.total_cents,
        currency=order.currency,
        idempotency_key=order_id,
    )
    if charge.requires_action:
        # Nothing to invoice or announce: the order stays unpaid until it is cancelled or expires.
        log.info("payment needs the cardholder to authenticate", extra={"order_id": order_id})
        return Settlement(Outcome.AWAITING_CUSTOMER)
    invoice = await repository.add_invoice(
        session,
        Invoice(
            id=str(uuid.uuid4()),
            order_id=order_id,
            customer_id=order.customer_id,
            status=(InvoiceStatus.PAID if charge.approved else InvoiceStatus.DECLINED).value,
            amount_cents=order.total_cents,
            currency=order.currency,
            decline_reason=charge.decline_reason,
            provider_reference=charge.reference,
            event_id=event_id,
            created_at=datetime.now(UTC),
        ),
    )
    await _announce(session, invoice)
    return Settlement(Outcome.PAID if charge.approved else Outcome.DECLINED, invoice)


async def _announce(session: AsyncSession, invoice: Invoice) -> None:
    """payment.succeeded or payment.failed, in the outbox, in the invoice's transaction."""
    data: dict[str, object] = {
        "order_id": invoice.order_id,
        "invoice_id": invoice.id,
        "amount_cents": invoice.amount_cents,
        "currency": invoice.currency,
    }
    if invoice.status == InvoiceStatus.PAID:
        topic = PAYMENT_SUCCEEDED
    else:
        topic = PAYMENT_FAILED
        data["reason"] = invoice.decline_reason
    envelope = Envelope.new(topic, PRODUCER, invoice.customer_id, data)
    await add_to_outbox(session, topic, invoice.order_id, envelope)


async def _announce_refund(session: AsyncSession, invoice: Invoice) -> None:
    """payment.refunded, in the outbox, in the transaction that makes the invoice REFUNDED.

    The amount is there for reading; consumers ask billing for the one to believe.
    """
    data: dict[str, object] = {
        "order_id": invoice.order_id,
        "invoice_id": invoice.id,
        "amount_cents": invoice.amount_cents,
        "currency": invoice.currency,
    }
    envelope = Envelope.new(PAYMENT_REFUNDED, PRODUCER, invoice.customer_id, data)
    await add_to_outbox(session, PAYMENT_REFUNDED, invoice.order_id, envelope)
