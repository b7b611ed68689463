"""A placement cancelled while inventory reserves gives back its stock, hold and key at once.

A cancelled request (uvicorn cancelling in-flight requests at shutdown, a
client gone, an anyio cancel scope) is no answer from inventory: it may have
reserved already. The request compensates as for a timeout, shielded from the
cancellation, rather than leaving the units and the customer's hold to the
expiry job's sweep 17 minutes later.

The real order app runs in-process (lifespan included) so the test can cancel
the very task that serves the request; inventory is the real service, behind
a small proxy that forwards the reservation at once and holds back its answer
until the test lets it go.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI, Request, Response
from hopkit.testing import ServerThread
from inventory_testing import add_product
from order_service.app import create_app
from order_testing import (
    available,
    bearer,
    customer_holds,
    make_settings,
    order_body,
    reservation_status,
    sqlite_count,
)

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
    """The order service, served in this test's event loop, behind the holding proxy."""

    http: httpx.AsyncClient
    database: str
    proxy: HeldAnswers


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
    settings = make_settings(
        tmp_path,
        issuer,
        inventory_url=proxy.app.state.base_url,
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
        yield InProcess(client, settings.database_url, proxy)


async def until_reserved(proxy: HeldAnswers) -> str:
    """The order id of the reservation inventory has made (its answer held back)."""
    assert await anyio.to_thread.run_sync(proxy.answered.wait, 15), "no reservation made"
    [order_id] = proxy.reserved
    return order_id


@pytest.mark.parametrize("cancel", ["task", "scope"])
async def test_a_placement_cancelled_while_reserving_gives_everything_back(
    cancel: str,
    order: InProcess,
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
        order_id = await until_reserved(order.proxy)
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
            order_id = await until_reserved(order.proxy)
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
    order.proxy.let_go.set()
    response = await order.http.post("/orders", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers
    assert response.json()["id"] != order_id
    assert available(inventory, product) == 6
