"""The expiry job: orders unpaid for too long are cancelled and their stock released.

It runs inside the service process (started in the lifespan) and acts as the
``order-scheduler`` client: inventory sees its own client-credentials token,
with nothing but ``inventory:release``, and no user, because no user asked.
Each order is cancelled in a transaction of its own (status, release and
``order.cancelled`` outbox row together), so one failure (inventory down)
leaves that order pending for the next pass and does not stop the others.
Several replicas may run the job: the conditional status UPDATE lets one win
per order.

An overdue order whose stock inventory already sold (release answers
:class:`~order_service.inventory.ReservationSettled`) was paid, but its
``payment.succeeded`` was lost after inventory's commit (dead-lettered when
order's own update kept failing). The job then asks billing, as
``order-scheduler`` with ``payments:verify`` only (:mod:`order_service.billing`),
and confirms the order when billing has a succeeded payment of its total
(:func:`order_service.service.expire_order`), logging it at WARNING: an event
was lost. When billing has no such payment nothing changes and the job logs
one ERROR line per pass naming the order, for a person to settle; when
billing does not answer, the order waits for the next pass.

Each pass also finds holds (:mod:`order_service.limits`) older than the
payment timeout (plus :data:`PLACEMENT_GRACE`) whose order was never stored
(a placement cut short by a crash, or whose compensating release failed),
releases their stock at inventory and gives them back, so they neither keep
units off sale nor count against their customer for ever. It deletes the
``Idempotency-Key`` records past their retention (24 hours) and, likewise,
those older than that whose order was never stored
(:mod:`order_service.idempotency`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from hopkit import tracing
from hopkit.events import DependencyUnavailable
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from . import idempotency, limits, service
from .billing import Billing
from .config import SCHEDULER_CLIENT_ID
from .inventory import Inventory

log = logging.getLogger(__name__)

#: Longer than any placement takes: its calls time out after 5 s each (catalogue, token
#: exchange, reservation) and SQLite's busy timeout is 15 s. A hold or key without an order
#: this long after the payment timeout was left by a placement that will never finish.
PLACEMENT_GRACE = timedelta(minutes=2)
#: Overdue orders in a row whose inventory or billing did not answer before a pass gives up:
#: a hung service costs each order its full timeout, and one order's odd answer must not stop
#: the others.
UNANSWERED_IN_A_ROW = 3


class ExpiryScheduler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        inventory: Inventory,
        billing: Billing,
        *,
        payment_timeout: float,
        interval: float,
        batch: int = 100,
    ) -> None:
        self._sessions = sessions
        self._inventory = inventory
        self._billing = billing
        self._timeout = timedelta(seconds=payment_timeout)
        self._interval = interval
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._resume_after: tuple[datetime, str] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="order-expiry")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            try:
                await asyncio.wait_for(task, 10)
            except TimeoutError:
                log.warning("expiry job did not stop in time; cancelled")

    async def run_once(self) -> int:
        """One pass: settle every order overdue now; the number cancelled (expired)."""
        trace = tracing.start(None, None)  # the events and logs of this pass share a trace
        try:
            placed_before = datetime.now(UTC) - self._timeout
            expired = 0
            unanswered = 0
            # A pass starts behind the order where the last one gave up, so a few orders
            # that never get an answer cannot keep every pass from the ones behind them.
            after, self._resume_after = self._resume_after, None
            # In batches, each after the last one's final order: orders that stay pending
            # (billing down, or waiting for a person) must not hide those behind them.
            while not self._stopping.is_set():
                async with self._sessions() as session:
                    batch = await service.overdue_orders(session, placed_before, self._batch, after)
                for placed_at, order_id in batch:
                    if self._stopping.is_set():
                        break
                    settled = await self._settle(order_id)
                    unanswered = 0 if settled is not None else unanswered + 1
                    expired += settled or 0
                    after = (placed_at, order_id)
                    if unanswered == UNANSWERED_IN_A_ROW:
                        # Inventory or billing is away: each order would wait for its
                        # timeout and log. The next pass goes on from here.
                        self._resume_after = after
                        break
                if self._resume_after is not None or len(batch) < self._batch:
                    break
            if not self._stopping.is_set():
                # A placement still under way must keep its hold and key: only those older
                # than the payment timeout plus the longest a placement can take are stale.
                stale = self._timeout + PLACEMENT_GRACE
                async with self._sessions.begin() as session:
                    await idempotency.forget_old(session, stale)
                await limits.give_back_stale(self._sessions, self._inventory, stale, self._batch)
            return expired
        finally:
            tracing.reset(trace)

    async def _settle(self, order_id: str) -> int | None:
        """Expire (1) or confirm one overdue order in a transaction of its own; 0 if not expired.

        None when inventory or billing did not answer: the order waits for the next pass.
        """
        try:
            async with self._sessions() as session, session.begin():
                outcome = await service.expire_order(
                    session, order_id, self._inventory, self._billing
                )
        except service.SoldButUnpaid as stuck:  # retrying will not change billing's answer
            log.error(
                "stock sold but billing has no matching payment: needs a person",
                extra={
                    "order_id": order_id,
                    "reason": stuck.reason,
                    "client_id": SCHEDULER_CLIENT_ID,
                },
            )
            return 0
        except Exception as exc:  # this order waits for the next pass
            log.warning(
                "expiring an order failed",
                extra={"order_id": order_id, "error": type(exc).__name__},
            )
            return None if isinstance(exc, DependencyUnavailable) else 0
        if outcome is service.Expiry.EXPIRED:
            log.info(
                "order expired", extra={"order_id": order_id, "client_id": SCHEDULER_CLIENT_ID}
            )
            return 1
        if outcome is service.Expiry.CONFIRMED:
            log.warning(
                "order confirmed by the expiry job after a lost payment event",
                extra={"order_id": order_id, "client_id": SCHEDULER_CLIENT_ID},
            )
        return 0

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the job outlives any database outage
                # The type only: a database error's text carries its statement's parameters.
                log.warning("expiry pass failed", extra={"error": type(exc).__name__})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
