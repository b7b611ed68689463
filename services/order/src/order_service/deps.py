"""FastAPI dependencies as ``Annotated`` aliases; everything comes from app.state.

``SessionDep`` (from hopkit) owns the transaction: it commits before the
response is sent and rolls back on any error. Placing an order needs one
thing more, so it has its own session dependency: after a rollback it runs
the compensations the service registered (releasing a reservation made
before the order could be stored), also when the request is cancelled, but
never once the order's commit may have landed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Request
from hopauth import Principal
from hopauth.fastapi import BearerToken as BearerToken
from hopauth.fastapi import Requires
from hopkit.db import SessionDep as SessionDep
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from . import compensation
from .inventory import Inventory
from .limits import Limits

log = logging.getLogger(__name__)

#: How long a request that failed or was cancelled may spend undoing what it did. Longer
#: than the slowest compensation with the default timeouts: a release at inventory (5 s),
#: after fetching its token from auth (5 s), then a few short database writes. Bounded so
#: a shutdown is not held up for ever; what is cut off is left to the expiry job's sweep.
UNDO_SECONDS = 12.0

# Sessions closed once their cut-off commit ends: a reference, so the task is not collected.
_closing: set[asyncio.Task[None]] = set()


async def _compensating_session(request: Request) -> AsyncIterator[AsyncSession]:
    """hopkit's session dependency, plus compensations after a rollback.

    A cancelled request (uvicorn's in-flight requests at shutdown with
    ``--timeout-graceful-shutdown`` or on a second signal, an anyio cancel
    scope around the app) compensates too, undoing within :data:`UNDO_SECONDS`,
    shielded from a cancelled anyio scope (from no ``Task.cancel()``: a shield
    does not stop those). A commit the cancellation hits runs on as a task of
    its own, since it may land all the same: its outcome decides (:func:`_commit`). Recent
    FastAPI (0.165) shields a dependency's exit itself, without a bound; older
    ones, which ``fastapi>=0.115`` allows, do not.
    """
    factory: async_sessionmaker[AsyncSession] = request.app.state.db_sessions
    session = factory()
    commit: asyncio.Future[None] | None = None
    try:
        try:
            yield session
        except BaseException:
            await _undo(session)
            raise
        commit = asyncio.ensure_future(session.commit())
        await _commit(session, commit)
    finally:
        await _close(session, commit)


async def _commit(session: AsyncSession, commit: asyncio.Future[None]) -> None:
    """Wait for ``commit``; undo only what a commit that failed left undone.

    Cancelled meanwhile, the commit goes on regardless (aiosqlite's thread runs
    it; PostgreSQL may have received COMMIT): undoing a stored order would release
    the stock of an order whose ``order.placed`` is in the outbox, lower the
    customer's holds below their unpaid orders and free its Idempotency-Key for
    a second order. So its outcome is awaited (bounded): committed, nothing to
    undo; failed, undo; still unknown, nothing is undone either (a hold or
    reservation without an order is the expiry job's sweep's; a stored order is
    simply pending). A commit that raised may still have landed (PostgreSQL, the
    connection lost after COMMIT was sent): each step place_order registers
    checks for the order first (:func:`compensation.unless_stored`).
    """
    try:
        await asyncio.shield(commit)
    except asyncio.CancelledError:
        # One deadline for waiting and undoing: UNDO_SECONDS in all.
        deadline = anyio.current_time() + UNDO_SECONDS
        with anyio.CancelScope(deadline=deadline, shield=True):
            await asyncio.wait([commit])
        landed = _landed(commit)
        if landed:
            compensation.discard(session)
        elif landed is None:
            log.warning(
                "placement cancelled while committing: outcome unknown, nothing undone",
                extra={"after_seconds": UNDO_SECONDS},
            )
        else:
            await _undo(session, deadline)
        raise
    except BaseException:
        if commit.done():  # else the outcome is unknown: nothing is undone (see above)
            await _undo(session)
        raise
    compensation.discard(session)


def _landed(commit: asyncio.Future[None]) -> bool | None:
    """Whether the commit landed; None while unknown (still running, or itself cancelled)."""
    if not commit.done() or commit.cancelled():
        return None
    return commit.exception() is None


async def _undo(session: AsyncSession, deadline: float | None = None) -> None:
    """Roll back, then run the compensations: shielded from a cancelled scope, bounded
    (by ``deadline`` when given, else :data:`UNDO_SECONDS` from now)."""
    if deadline is None:
        deadline = anyio.current_time() + UNDO_SECONDS
    with anyio.CancelScope(deadline=deadline, shield=True) as undo:
        await session.rollback()
        await compensation.run(session)
    if undo.cancelled_caught:
        log.error("compensations cut off", extra={"after_seconds": UNDO_SECONDS})


async def _close(session: AsyncSession, commit: asyncio.Future[None] | None) -> None:
    """Close the session (as ``async with`` would), or once a commit cut off ends."""
    if commit is not None and not commit.done():
        # Closing a session while it commits raises IllegalStateChangeError: close it after.
        def close_later(ended: asyncio.Future[None]) -> None:
            if not ended.cancelled():
                ended.exception()  # retrieved: the cancelled request was answered already
            task = asyncio.ensure_future(session.close())
            _closing.add(task)
            task.add_done_callback(_closed)

        commit.add_done_callback(close_later)
        return
    with anyio.CancelScope(shield=True):
        await session.close()


def _closed(task: asyncio.Task[None]) -> None:
    _closing.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning(
            "closing a session failed after its cut-off commit",
            extra={"error": type(task.exception()).__name__},
        )


# scope="function": commit before the response is sent (as hopkit.db.SessionDep).
CompensatingSessionDep = Annotated[AsyncSession, Depends(_compensating_session, scope="function")]


async def _inventory(request: Request) -> Inventory:
    inventory: Inventory = request.app.state.inventory
    return inventory


InventoryDep = Annotated[Inventory, Depends(_inventory)]
"""Inventory as the order service calls it on a customer's behalf."""


async def _sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = request.app.state.db_sessions
    return factory


SessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(_sessions)]
"""The session factory, for a short transaction of its own besides the request's."""


async def _limits(request: Request) -> Limits:
    limits: Limits = request.app.state.settings.order_limits
    return limits


LimitsDep = Annotated[Limits, Depends(_limits)]
"""What one customer's unpaid orders may hold (``ORDER_MAX_OPEN_*``)."""

# Requires validates the token and also declares the HTTP bearer scheme in OpenAPI.
# Named, so forward mode (forwarding.py) can swap each for a weaker one.
READ = Requires("orders:read", callers={"gateway"})
WRITE = Requires("orders:write", callers={"gateway"})
SUPPORT = Requires("support:read", callers={"gateway"})
# Kafka workers that must not believe an event: the order, from its owner. Each gets
# only what it checks: billing the whole order, notification its status.
INTERNAL_READ = Requires("orders:read", callers={"billing-worker"})
INTERNAL_STATUS = Requires("orders:status", callers={"notification-worker"})

Reader = Annotated[Principal, Depends(READ)]
"""A customer reading their own orders, through the gateway (exchanged token)."""

Writer = Annotated[Principal, Depends(WRITE)]
"""A customer placing or cancelling their own order, through the gateway (exchanged token)."""

Support = Annotated[Principal, Depends(SUPPORT)]
"""Support staff looking at any customer's order, through the gateway."""

InternalReader = Annotated[Principal, Depends(INTERNAL_READ)]
"""The billing worker fetching the authoritative order before it charges (client credentials)."""

InternalStatusReader = Annotated[Principal, Depends(INTERNAL_STATUS)]
"""The notification worker fetching an order's status before it tells a customer about the
order (client credentials): the status view, never the amount or the card."""
