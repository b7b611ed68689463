"""The expiry job: orders unpaid for too long are cancelled and their stock released.

It runs inside the service process (started in the lifespan) and acts as the
``order-scheduler`` client: inventory sees its own client-credentials token,
with nothing but ``inventory:release``, and no user, because no user asked.
Each order is cancelled in a transaction of its own (status, release and
``order.cancelled`` outbox row together), so one failure (inventory down)
leaves that order pending for the next pass and does not stop the others.
Several replicas may run the job: the conditional status UPDATE lets one win
per order.

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
from datetime import timedelta

from hopkit import tracing
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from . import idempotency, limits, service
from .config import SCHEDULER_CLIENT_ID
from .inventory import Inventory

log = logging.getLogger(__name__)

#: Longer than any placement takes: its calls time out after 5 s each (catalogue, token
#: exchange, reservation) and SQLite's busy timeout is 15 s. A hold or key without an order
#: this long after the payment timeout was left by a placement that will never finish.
PLACEMENT_GRACE = timedelta(minutes=2)


class ExpiryScheduler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        inventory: Inventory,
        *,
        payment_timeout: float,
        interval: float,
        batch: int = 100,
    ) -> None:
        self._sessions = sessions
        self._inventory = inventory
        self._timeout = timedelta(seconds=payment_timeout)
        self._interval = interval
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

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
        """One pass: cancel the overdue orders found now; the number cancelled."""
        trace = tracing.start(None, None)  # the events and logs of this pass share a trace
        try:
            async with self._sessions() as session:
                overdue = await service.overdue_orders(session, self._timeout, self._batch)
            expired = 0
            for order_id in overdue:
                if self._stopping.is_set():
                    break
                try:
                    async with self._sessions() as session, session.begin():
                        changed = await service.expire_order(session, order_id, self._inventory)
                except Exception as exc:  # this order waits for the next pass
                    log.warning(
                        "expiring an order failed",
                        extra={"order_id": order_id, "error": type(exc).__name__},
                    )
                    continue
                if changed:
                    expired += 1
                    log.info(
                        "order expired",
                        extra={"order_id": order_id, "client_id": SCHEDULER_CLIENT_ID},
                    )
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
