"""A cancelled or failed placement gives back its stock, hold and key at once, unless stored.

A request cancelled while inventory reserves (uvicorn cancelling in-flight
requests at shutdown with ``--timeout-graceful-shutdown`` or on a second
signal, an anyio cancel scope around the app; not a client that disconnects,
uvicorn does not cancel for that) is no answer from inventory: it may have
reserved already. The request compensates as for a timeout, shielded from the
cancellation, rather than leaving the units and the customer's hold to the
expiry job's sweep 17 minutes later.

An order whose commit landed is never undone: not when the cancellation hits
the commit itself (it runs on in aiosqlite's thread), nor when a commit that
raised had landed all the same (PostgreSQL, the connection lost after COMMIT
was sent): each compensation checks for the order first.

The real order app runs in-process (lifespan included) so the test can cancel
the very task that serves the request; inventory is the real service, behind
a small proxy that forwards the reservation at once and holds back its answer
until the test lets it go, or directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI, Request, Response
from hopkit.testing import ServerThread
from inventory_testing import add_product
from order_service import cards, compensation, deps, service
from order_service.app import create_app
from order_service.inventory import Line
from order_testing import (
    CARD,
    available,
    bearer,
    customer_holds,
    make_settings,
    order_body,
    reservation_status,
    sqlite_count,
    wait_for,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_

#: Longest the proxy holds a reservation's answer (the test lets it go well before).
HOLD_AT_MOST = 30.0
#: How soon after the cancellation everything must be given back.
PROMPTLY = 5.0


@dataclass
class HeldAnswers:
    """A proxy in front of inventory that holds back the next reservation's answer."""

    app: FastAPI
    #: The order ids inventory answered, in order.
    reserved: list[str]
    #: Set once inventory has answered a reservation.
    answered: threading.Event
    #: Set: answers are no longer held back.
    let_go: threading.Event


def holding_proxy(upstream: str) -> HeldAnswers:
    app = FastAPI()
    held = HeldAnswers(app, [], threading.Event(), threading.Event())

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def forward(path: str, request: Request) -> Response:
        body = await request.body()
        async with httpx.AsyncClient(base_url=upstream) as client:
            answer = await client.request(
                request.method,
                f"/{path}",
                content=body,
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            )
        if request.method == "POST" and path == "reservations":
            held.reserved.append(json.loads(body)["order_id"])
            held.answered.set()
            await anyio.to_thread.run_sync(held.let_go.wait, HOLD_AT_MOST)
        return Response(answer.content, answer.status_code, media_type="application/json")

    return held


@dataclass
class InProcess:
    """The order service, served in this test's event loop."""

    app: FastAPI
    http: httpx.AsyncClient
    database: str


@asynccontextmanager
async def in_process(tmp_path: Path, issuer: str, inventory_url: str) -> AsyncIterator[InProcess]:
    settings = make_settings(
        tmp_path,
        issuer,
        inventory_url=inventory_url,
        # Long enough that only the cancellation ends the request, not a timeout.
        inventory_timeout=HOLD_AT_MOST,
        run_payment_consumer=False,
        run_outbox_relay=False,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://order", timeout=60
        ) as client,
    ):
        yield InProcess(app, client, settings.database_url)


@pytest.fixture
def proxy(inventory_server: ServerThread) -> Iterator[HeldAnswers]:
    held = holding_proxy(inventory_server.base_url)
    with ServerThread(held.app) as server:
        held.app.state.base_url = server.base_url
        try:
            yield held
        finally:
            held.let_go.set()  # else the server waits for the held answer to stop


@pytest.fixture
async def order(tmp_path: Path, issuer: str, proxy: HeldAnswers) -> AsyncIterator[InProcess]:
    """The order service, with inventory behind the holding proxy."""
    async with in_process(tmp_path, issuer, proxy.app.state.base_url) as served:
        yield served


@pytest.fixture
async def direct(
    tmp_path: Path, issuer: str, inventory_server: ServerThread
) -> AsyncIterator[InProcess]:
    """The order service, calling inventory directly."""
    async with in_process(tmp_path, issuer, inventory_server.base_url) as served:
        yield served


async def until_reserved(proxy: HeldAnswers) -> str:
    """The order id of the reservation inventory has made (its answer held back)."""
    assert await anyio.to_thread.run_sync(proxy.answered.wait, 15), "no reservation made"
    [order_id] = proxy.reserved
    return order_id


@pytest.mark.parametrize("cancel", ["task", "scope"])
async def test_a_placement_cancelled_while_reserving_gives_everything_back(
    cancel: str,
    order: InProcess,
    proxy: HeldAnswers,
    inventory: httpx.Client,
    inventory_db: str,
    alice: str,
    alice_id: str,
) -> None:
    product = add_product(inventory_db, 10)
    body = order_body((product, 4))
    headers = {**bearer(alice), "Idempotency-Key": f"cancelled-{cancel}"}
    holds_before = customer_holds(order.database, alice_id)

    async def place() -> None:
        await order.http.post("/orders", json=body, headers=headers)

    if cancel == "task":
        # As uvicorn cancels an in-flight request at shutdown: Task.cancel(), delivered once.
        task = asyncio.create_task(place())
        order_id = await until_reserved(proxy)
        assert available(inventory, product) == 6  # inventory did reserve
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        # An anyio cancel scope (Starlette and FastAPI run on anyio): every await inside it
        # is cancelled again, the compensations' too unless they are shielded (deps.py
        # does; FastAPI 0.165 also shields a dependency's exit, older versions do not).
        async with anyio.create_task_group() as group:
            group.start_soon(place)
            order_id = await until_reserved(proxy)
            assert available(inventory, product) == 6
            cancelled_at = time.monotonic()
            group.cancel_scope.cancel()
    took = time.monotonic() - cancelled_at

    # Given back at once, not by the expiry job's sweep (not running here at all).
    assert took < PROMPTLY, f"compensating took {took:.1f} s"
    assert reservation_status(inventory_db, order_id) == "RELEASED"
    assert available(inventory, product) == 10
    assert customer_holds(order.database, alice_id) == holds_before
    assert sqlite_count(order.database, "SELECT count(*) FROM orders") == 0

    # The key is free again: the same request under it places a new order.
    proxy.let_go.set()
    response = await order.http.post("/orders", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers
    assert response.json()["id"] != order_id
    assert available(inventory, product) == 6


# -- an order whose commit landed is never undone -----------------------------------------


def stored_order_ids(database_url: str) -> list[str]:
    path = database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        return [str(row[0]) for row in connection.execute("SELECT id FROM orders")]


async def replayed(order: InProcess, body: dict[str, Any], headers: dict[str, str]) -> str:
    """The id of the order the Idempotency-Key in ``headers`` gives back (a replay)."""
    response = await order.http.post("/orders", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.headers.get("Idempotent-Replayed") == "true"
    order_id: str = response.json()["id"]
    return order_id


async def test_compensations_for_a_stored_order_undo_nothing(
    direct: InProcess,
    inventory: httpx.Client,
    inventory_db: str,
    alice: str,
    alice_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A commit that raised yet landed (PostgreSQL, the connection lost after COMMIT was
    sent): the compensations place_order registered find the order and undo nothing."""
    caplog.set_level(logging.WARNING, logger="order_service.compensation")
    product = add_product(inventory_db, 10)
    key = "stored-after-all"
    state = direct.app.state
    async with state.db_sessions() as session:
        placed = await service.place_order(
            session,
            customer_id=alice_id,
            lines=[Line(product, 4)],
            card_masked=cards.mask(CARD),
            user_token=alice,
            inventory=state.inventory,
            sessions=state.db_sessions,
            order_limits=state.settings.order_limits,
            idempotency_key=key,
        )
        await session.commit()
        # What the session dependency does when that commit raises: run the compensations
        # place_order registered (the key's, and the reservation's with the hold's).
        await compensation.run(session)
    order_id = placed.order.id

    assert stored_order_ids(direct.database) == [order_id]
    assert reservation_status(inventory_db, order_id) == "RESERVED"
    assert available(inventory, product) == 6
    assert customer_holds(direct.database, alice_id) == (1, 4)
    warned = [
        r for r in caplog.records if r.getMessage() == "order stored after all; nothing undone"
    ]
    assert [r.order_id for r in warned] == [order_id, order_id]  # type: ignore[attr-defined]
    headers = {**bearer(alice), "Idempotency-Key": key}
    assert await replayed(direct, order_body((product, 4)), headers) == order_id


@dataclass
class CommitGate:
    """Holds the placing transaction's COMMIT in aiosqlite's thread, as a slow disk would.

    SQLite's trace callback runs in the connection's own thread just before each
    statement: there, the COMMIT that follows an order's INSERT waits until the
    test lets it go. The event loop stays free, so the request can be cancelled
    while its commit is under way, and the commit then goes on as it would.
    """

    reached: threading.Event
    let_go: threading.Event

    def tracer(self) -> Callable[[str], None]:
        placing = False

        def trace(statement: str) -> None:
            nonlocal placing
            if statement.startswith("INSERT INTO orders "):
                placing = True
            elif statement == "COMMIT" and placing:
                placing = False
                self.reached.set()
                self.let_go.wait(HOLD_AT_MOST)

        return trace

    def install(self, engine: AsyncEngine) -> None:
        @event.listens_for(engine.sync_engine, "checkout")
        def trace_statements(_: Any, record: ConnectionPoolEntry, __: Any) -> None:
            await_(record.driver_connection.set_trace_callback(self.tracer()))


@pytest.fixture
def gate() -> Iterator[CommitGate]:
    held = CommitGate(threading.Event(), threading.Event())
    try:
        yield held
    finally:
        held.let_go.set()  # else aiosqlite's thread waits for it


@pytest.mark.parametrize("cancel", ["task", "scope"])
async def test_a_placement_cancelled_while_committing_keeps_its_order(
    cancel: str,
    direct: InProcess,
    gate: CommitGate,
    inventory: httpx.Client,
    inventory_db: str,
    alice: str,
    alice_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The commit goes on after the cancellation and lands: nothing is undone.

    ``task`` (a native ``Task.cancel()``) is the case deps._commit is for. ``scope``
    cannot fail on FastAPI 0.165, which shields a dependency's exit itself; it is
    kept for the FastAPI releases ``fastapi>=0.115`` allows that do not.
    """
    caplog.set_level(logging.INFO, logger="order_service")
    gate.install(direct.app.state.db_engine)
    product = add_product(inventory_db, 10)
    body = order_body((product, 4))
    headers = {**bearer(alice), "Idempotency-Key": f"committing-{cancel}"}

    async def place() -> None:
        await direct.http.post("/orders", json=body, headers=headers)

    async def until_committing() -> None:
        assert await anyio.to_thread.run_sync(gate.reached.wait, 15), "no commit reached"

    if cancel == "task":
        # A native Task.cancel() (uvicorn's shutdown, asyncio.run's leftovers): no anyio
        # shield stops it.
        task = asyncio.create_task(place())
        await until_committing()
        task.cancel()
        gate.let_go.set()
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        async with anyio.create_task_group() as group:
            group.start_soon(place)
            await until_committing()
            group.cancel_scope.cancel()
            gate.let_go.set()

    [order_id] = stored_order_ids(direct.database)
    assert reservation_status(inventory_db, order_id) == "RESERVED"
    assert available(inventory, product) == 6
    assert customer_holds(direct.database, alice_id) == (1, 4)
    assert await replayed(direct, body, headers) == order_id
    # The session dependency knew the commit landed: no compensation was even tried.
    assert not [r for r in caplog.records if r.name == "order_service.compensation"]


async def test_a_commit_whose_outcome_is_unknown_undoes_nothing(
    direct: InProcess,
    gate: CommitGate,
    inventory: httpx.Client,
    inventory_db: str,
    alice: str,
    alice_id: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Still committing when the wait for it ends: nothing is undone, the order may land."""
    caplog.set_level(logging.INFO, logger="order_service")
    monkeypatch.setattr(deps, "UNDO_SECONDS", 0.3)
    gate.install(direct.app.state.db_engine)
    product = add_product(inventory_db, 10)
    body = order_body((product, 4))
    headers = {**bearer(alice), "Idempotency-Key": "committing-unknown"}

    task = asyncio.create_task(direct.http.post("/orders", json=body, headers=headers))
    assert await anyio.to_thread.run_sync(gate.reached.wait, 15), "no commit reached"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [unknown] = [r for r in caplog.records if r.name == "order_service.deps"]
    assert unknown.getMessage().startswith("placement cancelled while committing")
    assert unknown.levelno == logging.WARNING

    gate.let_go.set()  # the commit lands after all; the session is closed after it
    [order_id] = await anyio.to_thread.run_sync(
        lambda: wait_for(lambda: stored_order_ids(direct.database), what="the order")
    )
    assert reservation_status(inventory_db, order_id) == "RESERVED"
    assert customer_holds(direct.database, alice_id) == (1, 4)
    assert await replayed(direct, body, headers) == order_id
    assert not [r for r in caplog.records if r.name == "order_service.compensation"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # The cut-off session is closed once its commit ends: its connection is back.
    pool = direct.app.state.db_engine.pool
    await anyio.to_thread.run_sync(
        lambda: wait_for(lambda: pool.checkedout() == 0, what="the connection back")
    )
