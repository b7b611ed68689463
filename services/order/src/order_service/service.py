"""Business logic: placing orders and moving them out of ``PENDING_PAYMENT``.

Functions take the session and plain values; the caller (the request's session
dependency, the Kafka consumer, or the expiry job) owns the transaction, so an
error raised here rolls back everything the call stored, and every outbox row
is committed together with the change it announces. Lifecycle::

    PENDING_PAYMENT --payment.succeeded--> CONFIRMED   reservation committed (sold)
    PENDING_PAYMENT --payment.failed-----> CANCELLED   payment_declined, released
    PENDING_PAYMENT --customer cancels---> CANCELLED   customer, released
    PENDING_PAYMENT --expiry job---------> CANCELLED   expired, released
    PENDING_PAYMENT --expiry job---------> CONFIRMED   already sold, billing has the payment

The first transition wins; any later one (a redelivered event, a late
payment, a double click) changes nothing. One compensation: a payment that
billing took before the order was cancelled, arriving after, is given back
(billing's refund), so a customer never pays for an order they do not get.
One repair: an overdue order whose stock inventory already sold (its
``payment.succeeded`` got as far as the commit, then was dead-lettered) is
confirmed by the expiry job once billing vouches for the payment.

Inventory is called before the transaction's first write, never while it
holds one: SQLite has one writer at a time, and a write transaction held
across an HTTP call stalls every other order meanwhile. The reservation
decides a race between a payment and a cancellation: it ends either sold
(commit) or released, never both, so the loser gets inventory's 409 and
changes nothing here. The conditional UPDATE then records the outcome. If
inventory or the database fails, the order stays ``PENDING_PAYMENT`` and the
attempt can be repeated (both inventory calls are idempotent).

What one customer's unpaid orders may hold is limited (:mod:`order_service.limits`):
placing takes a hold in a short transaction of its own before inventory is
called, and every move out of ``PENDING_PAYMENT`` gives it back. A request
with an ``Idempotency-Key`` claims it before that, so a repeated request
places nothing new (:mod:`order_service.idempotency`).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from hopkit.events import ORDER_CANCELLED, ORDER_CONFIRMED, ORDER_PLACED, Envelope
from hopkit.outbox import add_to_outbox
from hopkit.problems import Problem
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from . import compensation, idempotency, limits, repository
from .billing import SUCCEEDED, Billing, Payment
from .inventory import Inventory, InventoryUnavailable, Line, ReservationSettled
from .models import CancelReason, Order, OrderItem, OrderStatus

log = logging.getLogger(__name__)

PROBLEMS = "https://hopshop.example/problems/"
PRODUCER = "order"
# Inventory reserves at most this many units of one product per order.
MAX_LINE_QUANTITY = 1000


def order_not_found(order_id: str) -> Problem:
    # The same answer whether the order does not exist or is someone else's.
    return Problem(
        404,
        "Order not found",
        f"there is no order {order_id!r}",
        type_=PROBLEMS + "order-not-found",
        order_id=order_id,
    )


def order_settling(order_id: str) -> Problem:
    # A 5xx on purpose: the payment consumer retries it, and by then the race is decided.
    return Problem(
        503,
        "Order is being settled",
        f"order {order_id!r} is being paid or cancelled by another request; try again shortly",
        type_=PROBLEMS + "order-settling",
        order_id=order_id,
    )


class SoldButUnpaid(Exception):
    """Inventory sold an unpaid order's stock, but billing has no payment that matches it.

    No retry can settle it: the stock left and nobody paid (or order and
    billing disagree on the amount), so a person must look. ``reason`` names
    fields, never their values.
    """

    def __init__(self, order_id: str, reason: str) -> None:
        super().__init__(f"order {order_id}: {reason}")
        self.order_id = order_id
        self.reason = reason


class Expiry(enum.Enum):
    """What the expiry job did to one overdue order."""

    EXPIRED = "expired"  # CANCELLED (expired), stock released
    CONFIRMED = "confirmed"  # already sold and paid: a lost payment.succeeded, applied now
    UNCHANGED = "unchanged"  # no longer PENDING_PAYMENT


@dataclass(frozen=True, slots=True)
class Placed:
    order: Order
    #: An earlier request with the same ``Idempotency-Key`` placed it: nothing new was.
    replayed: bool = False


def new_order_id() -> str:
    return f"ord_{uuid.uuid4().hex}"


# -- reads ------------------------------------------------------------------------------


async def get_own_order(session: AsyncSession, order_id: str, customer_id: str) -> Order:
    order = await repository.get_order(session, order_id)
    if order is None or order.customer_id != customer_id:
        raise order_not_found(order_id)
    return order


async def get_any_order(session: AsyncSession, order_id: str) -> Order:
    """Any customer's order: for support staff and the billing worker only."""
    order = await repository.get_order(session, order_id)
    if order is None:
        raise order_not_found(order_id)
    return order


async def list_orders(session: AsyncSession, customer_id: str, limit: int) -> list[Order]:
    return await repository.list_orders(session, customer_id, limit)


# -- placing ----------------------------------------------------------------------------


async def place_order(
    session: AsyncSession,
    *,
    customer_id: str,
    lines: Sequence[Line],
    card_masked: str,
    user_token: str,
    inventory: Inventory,
    sessions: async_sessionmaker[AsyncSession],
    order_limits: limits.Limits,
    idempotency_key: str | None = None,
) -> Placed:
    """Price the lines from the catalogue, reserve them, and store the order with its event.

    Prices, names and currency come from inventory's catalogue, never from the
    client. Insufficient stock is inventory's 409 and nothing is stored. A
    customer whose unpaid orders already hold what they may gets a 409 too,
    before anything is reserved: the hold is taken and committed on its own
    (``sessions``) first. The hold and the reservation are made before the
    order row exists, so compensations giving them back are registered on
    ``session`` for the case the order is never committed.

    With ``idempotency_key`` the key is claimed first, likewise on its own
    (draft-ietf-httpapi-idempotency-key-header-07 §2.6): a key that placed an
    order already gives that order back (``replayed``) and nothing else
    happens; the key is given back too if the order is never committed.
    """
    wanted = _normalise(lines)
    units = sum(line.quantity for line in wanted)
    for line in wanted:
        if line.quantity > MAX_LINE_QUANTITY:
            raise Problem(
                422,
                "Quantity too large",
                f"product {line.product_id}: at most {MAX_LINE_QUANTITY} units per order",
                type_=PROBLEMS + "quantity-too-large",
                product_id=line.product_id,
            )
    limits.check_size(units, order_limits)
    order_id = new_order_id()
    if idempotency_key is not None:
        key = idempotency_key
        release_key = f"release the idempotency key of {order_id}"
        # Every undo step checks first that the order was not stored after all: a commit
        # that raised may have landed (compensation.unless_stored).
        key_back = compensation.unless_stored(
            sessions,
            order_id,
            functools.partial(idempotency.release, sessions, customer_id, key, order_id),
        )
        try:
            earlier = await idempotency.claim(
                sessions,
                customer_id=customer_id,
                key=key,
                fingerprint=idempotency.fingerprint(wanted, card_masked),
                order_id=order_id,
            )
        except asyncio.CancelledError:
            # Cut off, the claim may have committed all the same. Releasing frees the key
            # only if it was claimed for this order.
            compensation.on_rollback(session, release_key, key_back)
            raise
        if earlier is not None:
            return Placed(await get_own_order(session, earlier, customer_id), replayed=True)
        compensation.on_rollback(session, release_key, key_back)
    products = await asyncio.gather(*(inventory.product(line.product_id) for line in wanted))
    items: list[OrderItem] = []
    for line, product in zip(wanted, products, strict=True):
        if product is None:
            raise Problem(
                422,
                "Unknown product",
                f"there is no product {line.product_id}",
                type_=PROBLEMS + "unknown-product",
                product_id=line.product_id,
            )
        items.append(
            OrderItem(
                product_id=product.id,
                sku=product.sku,
                name=product.name,
                quantity=line.quantity,
                unit_price_cents=product.price_cents,
            )
        )
    currencies = sorted({product.currency for product in products if product is not None})
    if len(currencies) != 1:
        raise Problem(
            422,
            "Mixed currencies",
            "all products of one order must be priced in the same currency",
            type_=PROBLEMS + "mixed-currencies",
            currencies=currencies,
        )

    hold = f"give back the hold of {order_id}"
    hold_back = compensation.unless_stored(
        sessions, order_id, functools.partial(limits.give_back, sessions, order_id)
    )
    try:
        await limits.take(
            sessions, order_id=order_id, customer_id=customer_id, units=units, limits=order_limits
        )
    except asyncio.CancelledError:
        # Cut off, the hold may have committed all the same (nothing is reserved yet).
        # Giving back takes only a hold that exists.
        compensation.on_rollback(session, hold, hold_back)
        raise

    async def release_then_give_back() -> None:
        # A hold is given back only once its units are: if the release fails, the hold
        # stays, dated back so the expiry job's next pass releases and gives it back.
        try:
            await inventory.release(order_id)
        except InventoryUnavailable:
            await limits.orphan(sessions, order_id)
            raise
        await limits.give_back(sessions, order_id)

    release = f"release {order_id} and give back its hold"
    release_back = compensation.unless_stored(sessions, order_id, release_then_give_back)
    try:
        await inventory.reserve(user_token, order_id, wanted)
    except (InventoryUnavailable, asyncio.CancelledError):
        # No answer is not "nothing reserved": a timeout, or the request cancelled while
        # waiting, can come after inventory reserved. Releasing is idempotent and takes
        # no reservation at all as done.
        compensation.on_rollback(session, release, release_back)
        raise
    except Exception:
        # Inventory refused (short of stock, unknown product): nothing was reserved.
        compensation.on_rollback(session, hold, hold_back)
        raise
    compensation.on_rollback(session, release, release_back)

    now = datetime.now(UTC)
    order = Order(
        id=order_id,
        customer_id=customer_id,
        status=OrderStatus.PENDING_PAYMENT.value,
        reason=None,
        total_cents=sum(item.quantity * item.unit_price_cents for item in items),
        currency=currencies[0],
        card_masked=card_masked,
        created_at=now,
        updated_at=now,
    )
    await repository.add_order(session, order, items)
    await _announce(session, ORDER_PLACED, order_id, customer_id)
    return Placed(order)


# -- leaving PENDING_PAYMENT ------------------------------------------------------------


async def cancel_by_customer(
    session: AsyncSession, order_id: str, customer_id: str, inventory: Inventory
) -> Order:
    """The customer cancels their own unpaid order; 409 once it is paid or cancelled."""
    if not await _cancel(session, order_id, CancelReason.CUSTOMER, inventory, customer_id):
        order = await get_own_order(session, order_id, customer_id)
        raise Problem(
            409,
            "Order cannot be cancelled",
            f"order {order_id!r} is {order.status}; only an unpaid order can be cancelled",
            type_=PROBLEMS + "order-not-pending",
            order_id=order_id,
            order_status=order.status,
        )
    return await get_any_order(session, order_id)


async def confirm_payment(
    session: AsyncSession,
    order_id: str,
    inventory: Inventory,
    billing: Billing,
    *,
    amount_cents: int | None = None,
    currency: str | None = None,
) -> bool:
    """Billing charged the order: CONFIRMED, reservation committed, ``order.confirmed``.

    Call it only for a payment billing confirmed (payments.py). When the order
    was cancelled first, the payment is refunded at ``billing`` instead (True:
    that is this event's effect); :class:`~order_service.billing.BillingUnavailable`
    is raised when billing does not do it, for the consumer to retry. False when
    the order had already left ``PENDING_PAYMENT`` otherwise (nothing changes).
    A payment for another amount than the order's is refused (409), not applied.
    """
    order = await get_any_order(session, order_id)
    if not _pays_for(order, amount_cents, currency):
        raise Problem(
            409,
            "Payment does not match the order",
            f"the payment for order {order_id!r} is not for the order's total",
            type_=PROBLEMS + "payment-mismatch",
            order_id=order_id,
        )
    if order.status != OrderStatus.PENDING_PAYMENT:
        return await _late_payment(session, order_id, billing)
    try:
        await inventory.commit(order_id)
    except ReservationSettled:
        # Released by a cancellation that has not committed yet: the retry will see it.
        raise order_settling(order_id) from None
    if not await _confirm(session, order):
        # A concurrent copy of this payment, or the expiry job, confirmed it first.
        return await _late_payment(session, order_id, billing)
    return True


async def decline_payment(session: AsyncSession, order_id: str, inventory: Inventory) -> bool:
    """Billing could not charge the order: CANCELLED (``payment_declined``), stock released."""
    await get_any_order(session, order_id)  # 404 for an order that does not exist
    try:
        if await _cancel(session, order_id, CancelReason.PAYMENT_DECLINED, inventory):
            return True
    except ReservationSettled:
        # Sold by a payment that has not committed yet: the retry will see it confirmed.
        raise order_settling(order_id) from None
    await _log_unchanged(session, order_id, "payment.failed")
    return False


async def expire_order(
    session: AsyncSession, order_id: str, inventory: Inventory, billing: Billing
) -> Expiry:
    """The expiry job: an order unpaid for too long is CANCELLED (``expired``), stock released.

    Unless inventory sold its stock already (:class:`ReservationSettled`): then
    a ``payment.succeeded`` got as far as inventory's commit and was lost before
    the order recorded it (dead-lettered). Billing is asked, before any write,
    what it recorded: a succeeded payment of the order's total, not refunded,
    confirms the order (:func:`_confirm`, as the payment would have; the stock
    is sold, so inventory is not called again). Anything else raises
    :class:`SoldButUnpaid` and changes nothing;
    :class:`~order_service.billing.BillingUnavailable` leaves the order for the
    next pass.
    """
    try:
        if await _cancel(session, order_id, CancelReason.EXPIRED, inventory):
            return Expiry.EXPIRED
        return Expiry.UNCHANGED
    except ReservationSettled:
        pass
    order = await get_any_order(session, order_id)
    if order.status != OrderStatus.PENDING_PAYMENT:
        return Expiry.UNCHANGED
    reason = _unpaid(order, await billing.payment(order_id))
    if reason is not None:
        raise SoldButUnpaid(order_id, reason)
    return Expiry.CONFIRMED if await _confirm(session, order) else Expiry.UNCHANGED


async def overdue_orders(
    session: AsyncSession,
    placed_before: datetime,
    limit: int,
    after: tuple[datetime, str] | None = None,
) -> list[tuple[datetime, str]]:
    return await repository.overdue_orders(session, placed_before, limit, after)


async def _cancel(
    session: AsyncSession,
    order_id: str,
    reason: CancelReason,
    inventory: Inventory,
    customer_id: str | None = None,
) -> bool:
    """Release, PENDING_PAYMENT -> CANCELLED, ``order.cancelled``; False if not pending.

    Raises :class:`ReservationSettled` (409) when the stock was sold meanwhile.
    """
    order = await repository.get_order(session, order_id)
    if (
        order is None
        or order.status != OrderStatus.PENDING_PAYMENT
        or (customer_id is not None and order.customer_id != customer_id)
    ):
        return False
    await inventory.release(order_id)
    moved = await repository.leave_pending(
        session,
        order_id,
        to=OrderStatus.CANCELLED,
        reason=reason,
        now=datetime.now(UTC),
        customer_id=customer_id,
    )
    if not moved:  # a concurrent cancellation (customer, expiry, decline) came first
        return False
    await _announce(session, ORDER_CANCELLED, order_id, order.customer_id, reason=reason.value)
    return True


async def _confirm(session: AsyncSession, order: Order) -> bool:
    """PENDING_PAYMENT -> CONFIRMED with ``order.confirmed``: the one place an order is confirmed.

    The caller has made sure billing has the payment and inventory sold the
    stock. False (nothing changes) when the order had left ``PENDING_PAYMENT``.
    """
    moved = await repository.leave_pending(
        session, order.id, to=OrderStatus.CONFIRMED, reason=None, now=datetime.now(UTC)
    )
    if moved:
        await _announce(session, ORDER_CONFIRMED, order.id, order.customer_id)
    return moved


def _pays_for(order: Order, amount_cents: int | None, currency: str | None) -> bool:
    """Whether a payment of ``amount_cents`` in ``currency`` is for the order's total.

    None says nothing: the caller has no such figure to compare.
    """
    return (amount_cents is None or amount_cents == order.total_cents) and (
        currency is None or currency == order.currency
    )


def _unpaid(order: Order, payment: Payment | None) -> str | None:
    """Why billing's record does not show the order paid; None when it does."""
    if payment is None:
        return "billing has no payment for the order"
    if payment.status != SUCCEEDED:
        return f"billing recorded the payment as {payment.status}"
    if payment.refunded:
        return "billing refunded the payment"
    if not _pays_for(order, payment.amount_cents, payment.currency):
        return "billing's amount or currency is not the order's"
    return None


async def _announce(
    session: AsyncSession, topic: str, order_id: str, customer_id: str, **extra: str
) -> None:
    """The event for ``topic`` in this transaction's outbox: the order id, never more."""
    envelope = Envelope.new(topic, PRODUCER, customer_id, {"order_id": order_id, **extra})
    await add_to_outbox(session, topic, order_id, envelope)


async def _late_payment(session: AsyncSession, order_id: str, billing: Billing) -> bool:
    """A confirmed payment for an order no longer pending: refunded if it was cancelled.

    The cancellation (customer, expiry) won the race with the payment, the
    stock is released: the customer must get the money back. Billing's
    refund is idempotent, so a retry after a failure below is safe. True when
    refunded, False when the order is CONFIRMED already (a redelivery).
    """
    order = await get_any_order(session, order_id)
    if order.status != OrderStatus.CANCELLED:
        await _log_unchanged(session, order_id, "payment.succeeded")
        return False
    refund = await billing.refund(order_id)
    log.info(
        "payment for a cancelled order refunded",
        extra={
            "order_id": order_id,
            "invoice_id": refund.invoice_id,
            "refund_reference": refund.refund_reference,
            "cancel_reason": order.reason,
        },
    )
    return True


async def _log_unchanged(session: AsyncSession, order_id: str, event: str) -> None:
    order = await get_any_order(session, order_id)
    log.info(
        "order no longer pending; event changes nothing",
        extra={"order_id": order_id, "event": event, "order_status": order.status},
    )


def _normalise(lines: Sequence[Line]) -> tuple[Line, ...]:
    """One line per product (quantities of repeated products added up), in product order."""
    totals: dict[int, int] = {}
    for line in lines:
        totals[line.product_id] = totals.get(line.product_id, 0) + line.quantity
    return tuple(Line(product_id, totals[product_id]) for product_id in sorted(totals))
