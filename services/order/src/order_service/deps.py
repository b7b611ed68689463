"""FastAPI dependencies as ``Annotated`` aliases; everything comes from app.state.

``SessionDep`` (from hopkit) owns the transaction: it commits before the
response is sent and rolls back on any error. Placing an order needs one
thing more, so it has its own session dependency: after a rollback it runs
the compensations the service registered (releasing a reservation made
before the order could be stored), also when the request is cancelled.
"""

from __future__ import annotations

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


async def _compensating_session(request: Request) -> AsyncIterator[AsyncSession]:
    """hopkit's session dependency, plus compensations after a rollback.

    A cancelled request (uvicorn at shutdown, an anyio cancel scope around the app)
    compensates too. Inside a cancelled anyio scope every await is cancelled
    again, so the commit, the rollback and the compensations are shielded from
    it (not from a second ``Task.cancel()``); undoing within :data:`UNDO_SECONDS`.
    Recent FastAPI (0.165) shields a dependency's exit itself, without a bound;
    older ones, which ``fastapi>=0.115`` allows, do not.
    """
    factory: async_sessionmaker[AsyncSession] = request.app.state.db_sessions
    async with factory() as session:
        try:
            yield session
            # A commit cut short may land all the same (aiosqlite's thread goes on): finish
            # it, unbounded here (the database's own timeouts bound it), rather than undo
            # an order that is stored. A commit that fails is rolled back below.
            with anyio.CancelScope(shield=True):
                await session.commit()
        except BaseException:
            with anyio.move_on_after(UNDO_SECONDS, shield=True) as undo:
                await session.rollback()
                await compensation.run(session)
            if undo.cancelled_caught:
                log.error("compensations cut off", extra={"after_seconds": UNDO_SECONDS})
            raise
        compensation.discard(session)


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
