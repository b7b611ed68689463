"""HTTP routes: parse, authorise, call the service layer, shape the answer. Nothing else."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path
from hopauth import Principal
from hopkit.logs import annotate

from . import service
from .deps import InvoiceReader, PaymentRefunder, PaymentVerifier, ProviderDep, SessionDep
from .models import Invoice, InvoiceStatus
from .schemas import ORDER_ID_PATTERN, InvoiceOut, PaymentOut, RefundOut

router = APIRouter()


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {}}}


AUTH_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: _problem("No token, or an invalid one (see `WWW-Authenticate`)"),
    403: _problem("Missing scope (see `WWW-Authenticate`) or a caller other than the ones listed"),
}
ORDER_ID = Path(pattern=ORDER_ID_PATTERN, description="The order's id")


@router.get(
    "/invoices",
    tags=["invoices"],
    summary="The caller's own invoices, newest first",
    description="Caller: the gateway, with the customer's token exchanged for `aud=billing` "
    "(`billing:read`). The customer is the token's `sub`; nobody sees another's invoices.",
    responses=AUTH_PROBLEMS,
)
async def list_invoices(session: SessionDep, principal: InvoiceReader) -> list[InvoiceOut]:
    _audit("list-invoices", principal)
    invoices = await service.list_invoices(session, principal.subject)
    return [InvoiceOut.model_validate(invoice, from_attributes=True) for invoice in invoices]


@router.get(
    "/internal/orders/{order_id}/payment",
    tags=["internal"],
    summary="The payment billing recorded for an order, to check a payment event against",
    description="Callers: `order` (before it confirms or cancels an order on a payment event), "
    "`order-scheduler` (order's expiry job, before it confirms an overdue order whose stock "
    "was sold: a lost payment event) and `notification-worker` (before it tells a customer "
    "about a payment or its refund), each by client credentials (`payments:verify`). "
    "Anyone can write an event to Kafka; "
    "only billing's record says whether a payment happened (and was given back), for how "
    "much, and for whom.",
    responses={
        404: _problem("Billing has no payment for the order (type `.../payment-not-found`)"),
        422: _problem("The order id is not one (`errors` names the field)"),
        **AUTH_PROBLEMS,
    },
)
async def payment_of_order(
    session: SessionDep, principal: PaymentVerifier, order_id: str = ORDER_ID
) -> PaymentOut:
    _audit("verify-payment", principal, order_id=order_id)
    return _payment_out(await service.payment_for_order(session, order_id))


@router.post(
    "/internal/orders/{order_id}/refund",
    tags=["internal"],
    summary="Give back the payment for an order that was cancelled before the payment reached it",
    description="Caller: `order` only, by client credentials (`payments:refund`), when billing "
    "confirms a `payment.succeeded` for an order already cancelled (by the customer or the "
    "expiry job) between billing's check and the event. Idempotent: a second call answers "
    "the same and refunds nothing more.",
    responses={
        404: _problem("Billing has no payment for the order (type `.../payment-not-found`)"),
        409: _problem("The invoice holds no payment to give back (`.../payment-not-refundable`)"),
        422: _problem("The order id is not one (`errors` names the field)"),
        **AUTH_PROBLEMS,
    },
)
async def refund_order(
    session: SessionDep,
    principal: PaymentRefunder,
    provider: ProviderDep,
    order_id: str = ORDER_ID,
) -> RefundOut:
    _audit("refund-payment", principal, order_id=order_id)
    invoice = await service.refund_order(session, order_id, provider)
    assert invoice.refund_reference is not None  # REFUNDED invoices hold one (service.py)
    return RefundOut(
        order_id=invoice.order_id,
        invoice_id=invoice.id,
        status="REFUNDED",
        amount_cents=invoice.amount_cents,
        currency=invoice.currency,
        refund_reference=invoice.refund_reference,
    )


def _payment_out(invoice: Invoice) -> PaymentOut:
    # A refunded payment still happened (billing emitted payment.succeeded for it).
    paid = invoice.status in (InvoiceStatus.PAID, InvoiceStatus.REFUNDED)
    return PaymentOut(
        order_id=invoice.order_id,
        invoice_id=invoice.id,
        status="succeeded" if paid else "failed",
        amount_cents=invoice.amount_cents,
        currency=invoice.currency,
        customer_id=invoice.customer_id,
        reason=invoice.decline_reason,
        refunded=invoice.status == InvoiceStatus.REFUNDED,
    )


def _audit(action: str, principal: Principal, **fields: str) -> None:
    """Who did what, on this request's log line: claims only, never the token."""
    annotate(
        action=action,
        **fields,
        sub=principal.subject,
        client_id=principal.client_id,
        act=list(principal.actors),
        jti=principal.token_id,
    )
