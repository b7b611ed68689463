"""All the SQL of the billing service. Functions take the session; none commits."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Invoice


async def invoices_of(session: AsyncSession, customer_id: str) -> list[Invoice]:
    """The customer's invoices, newest first."""
    rows = await session.scalars(
        select(Invoice)
        .where(Invoice.customer_id == customer_id)
        .order_by(Invoice.created_at.desc(), Invoice.id)
    )
    return list(rows.all())


async def invoice_for_order(session: AsyncSession, order_id: str) -> Invoice | None:
    found: Invoice | None = await session.scalar(
        select(Invoice).where(Invoice.order_id == order_id)
    )
    return found


async def mark_refunded(session: AsyncSession, invoice_id: str, refund_reference: str) -> bool:
    """PAID -> REFUNDED; False when the invoice was not PAID (a concurrent refund came first).

    Conditional on the status, so two refunds racing on one invoice change it once.
    """
    result = await session.execute(
        update(Invoice)
        .where(Invoice.id == invoice_id, Invoice.status == "PAID")
        .values(status="REFUNDED", refund_reference=refund_reference)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def add_invoice(session: AsyncSession, invoice: Invoice) -> Invoice:
    """Insert now (not at commit), so a second invoice for the order fails here, in this unit.

    ``invoices.order_id`` is unique: two workers racing on one order cannot
    both store an invoice; the loser's transaction, and its outbox row, roll back.
    """
    session.add(invoice)
    await session.flush()
    return invoice
