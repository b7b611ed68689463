"""Limits on what one customer's unpaid orders hold, so nobody can take the catalogue off sale.

They bound a customer's share; a product with less stock than that share is
capped per customer by inventory (``max_held_per_customer``: its 409
``hold-limit-reached`` gives the hold back like short stock does).

An unpaid order holds its stock until it is paid, cancelled or expired
(``ORDER_PAYMENT_TIMEOUT``). Without a limit one customer could hold every
unit of every product for that long with orders that will never be paid
(a card waiting for cardholder authentication, say), again and again. So a
customer may have at most ``ORDER_MAX_OPEN_ORDERS`` orders in
``PENDING_PAYMENT`` at a time, holding at most ``ORDER_MAX_OPEN_UNITS`` units
together; one order alone may hold no more than that either.

The check must hold under concurrency: a count of the open orders followed
by an insert after inventory's answer would let N concurrent placements all
see the same free place. Each placement therefore takes a *hold* first, in a
short transaction of its own before inventory is called: a conditional
UPDATE of the customer's totals (:func:`order_service.repository.take_hold`)
plus a ``holds`` row for the order. No write transaction is held across the
HTTP call (SQLite has one writer at a time). The hold is given back

- in the transaction of every move out of ``PENDING_PAYMENT`` (payment,
  decline, the customer's cancellation, expiry:
  :func:`order_service.repository.leave_pending`),
- after a placement that fails once the hold is taken (inventory refuses,
  the order cannot be stored): a compensation on the request's session,
  after releasing the reservation when one may exist; if that release
  fails, the hold is kept and dated back so the expiry job takes it next;
- by the expiry job for a hold with no order that is older than the payment
  timeout plus the longest a placement takes (the process stopped in
  between), or dated back as above: it releases the order's stock at
  inventory, then gives the hold back, and keeps it while inventory is down.
  So neither a crash nor an outage locks a customer out, or units away, for
  good.

Giving back deletes the ``holds`` row, so it happens at most once per order
whichever of these gets there first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hopkit.problems import Problem
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from . import repository
from .inventory import Inventory, InventoryUnavailable, ReservationSettled

log = logging.getLogger(__name__)

PROBLEMS = "https://hopshop.example/problems/"
#: Attempts at taking a hold when a concurrent cancellation frees room meanwhile.
_TAKE_TRIES = 3


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one customer's unpaid orders may hold (``ORDER_MAX_OPEN_*``)."""

    max_orders: int
    max_units: int


def check_size(units: int, limits: Limits) -> None:
    """One order alone may not hold more than the customer's units limit: else a 422.

    422, not 409: no payment or cancellation would ever let this order through.
    """
    if units > limits.max_units:
        raise Problem(
            422,
            "Order too large",
            f"an unpaid order may hold at most {limits.max_units} units; this one asks for {units}",
            type_=PROBLEMS + "order-too-large",
            units=units,
            max_open_units=limits.max_units,
        )


def too_many_unpaid(open_orders: int, open_units: int, units: int, limits: Limits) -> Problem:
    """409 (RFC 9457): the customer's unpaid orders already hold what they may."""
    plural, hold = ("order", "holds") if open_orders == 1 else ("orders", "hold")
    if open_orders >= limits.max_orders:
        detail = (
            f"you have {open_orders} unpaid {plural} (at most {limits.max_orders} at a time); "
            "pay or cancel one first"
        )
    else:
        detail = (
            f"your {open_orders} unpaid {plural} {hold} {open_units} units, and this order's "
            f"{units} more would pass the limit of {limits.max_units}; pay or cancel one first"
        )
    return Problem(
        409,
        "Too many unpaid orders",
        detail,
        type_=PROBLEMS + "too-many-unpaid-orders",
        open_orders=open_orders,
        open_units=open_units,
        max_open_orders=limits.max_orders,
        max_open_units=limits.max_units,
    )


async def take(
    sessions: async_sessionmaker[AsyncSession],
    *,
    order_id: str,
    customer_id: str,
    units: int,
    limits: Limits,
) -> None:
    """Count the order against the customer's limits, committed at once; else the 409.

    Its own transaction, so the check is decided (and the write lock released)
    before inventory is called.
    """
    check_size(units, limits)
    # On PostgreSQL (READ COMMITTED) a cancellation can commit between the refused UPDATE
    # and the read of the totals. When they show room, the UPDATE is tried again: refusing
    # would give the customer counts that contradict the refusal.
    for _ in range(_TAKE_TRIES):
        async with sessions.begin() as session:
            taken = await repository.take_hold(
                session,
                order_id=order_id,
                customer_id=customer_id,
                units=units,
                max_orders=limits.max_orders,
                max_units=limits.max_units,
                now=datetime.now(UTC),
            )
            if taken:
                return
            open_orders, open_units = await repository.customer_totals(session, customer_id)
        if not has_room(open_orders, open_units, units, limits):
            break
    raise too_many_unpaid(open_orders, open_units, units, limits)


def has_room(open_orders: int, open_units: int, units: int, limits: Limits) -> bool:
    """Whether totals this large leave room for one more order of ``units``."""
    return open_orders < limits.max_orders and open_units + units <= limits.max_units


async def orphan(sessions: async_sessionmaker[AsyncSession], order_id: str) -> None:
    """The placement failed and its stock could not be released: the expiry job's next
    pass takes the hold (releasing, then giving it back) without waiting for it to age."""
    async with sessions.begin() as session:
        await repository.date_hold_back(session, order_id, datetime.fromtimestamp(0, UTC))


async def give_back(sessions: async_sessionmaker[AsyncSession], order_id: str) -> None:
    """The order was never stored: its hold is given back (a compensation step)."""
    async with sessions.begin() as session:
        await repository.give_back_hold(session, order_id)


async def give_back_stale(
    sessions: async_sessionmaker[AsyncSession],
    inventory: Inventory,
    older_than: timedelta,
    batch: int,
) -> int:
    """Holds older than ``older_than`` without an unpaid order: released, given back; how many.

    Their reservation, if one was ever made, is released at inventory first
    (idempotent; with none, inventory records the order as released so a late
    one is refused). A hold whose release fails stays for the next pass: its
    units are not forgotten.
    """
    async with sessions.begin() as session:
        order_ids = await repository.stale_holds(session, datetime.now(UTC) - older_than, batch)
    freed = 0
    for order_id in order_ids:
        try:
            await inventory.release(order_id)
        except InventoryUnavailable:
            break  # logged by the client; inventory is down for all of them: next pass
        except ReservationSettled:
            # Sold with no order to show for it: nothing to release, and nothing more
            # this hold can do. Give it back, loudly.
            log.error("a hold without an order had its stock sold", extra={"order_id": order_id})
        try:
            async with sessions.begin() as session:
                freed += await repository.give_back_hold(session, order_id)
        except SQLAlchemyError as exc:  # released; giving back is retried next pass
            log.warning(
                "hold not given back", extra={"order_id": order_id, "error": type(exc).__name__}
            )
    if freed:
        log.warning("holds without an order released and given back", extra={"holds": freed})
    return freed
