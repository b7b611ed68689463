"""A reservation whose answer never arrives is released, not left holding stock.

A timeout is not a refusal: inventory may have reserved before order stopped
waiting. Order answers 503 and, because it cannot know, releases (release is
idempotent; with no reservation yet it leaves a released one in its place, so
a request still on its way is refused). The slow link is a small proxy in
front of the real inventory service that holds back ``POST /reservations``
only (its answer, or the request itself), so the release gets through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from hopkit.testing import ServerThread
from inventory_testing import add_product
from order_service.app import create_app
from order_testing import (
    assert_problem,
    available,
    bearer,
    customer_holds,
    make_settings,
    order_body,
    sqlite_count,
)

#: Longer than the order service below waits for inventory.
SLOW = 3.0


def slow_reservations(upstream: str, late: str) -> FastAPI:
    """Forwards everything to ``upstream``; a reservation's ``late`` part is held back.

    ``answer``: inventory reserves at once and its answer comes late.
    ``request``: the request reaches inventory late, after order gave up and released.
    """
    app = FastAPI()
    #: What inventory answered each reservation that went through here.
    app.state.reservations = []
    #: While True, releases do not get through (inventory is down for them).
    app.state.releases_down = False

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def forward(path: str, request: Request) -> Response:
        reserving = request.method == "POST" and path == "reservations"
        if path.endswith("/release") and app.state.releases_down:
            return Response(b'{"title": "down"}', 503, media_type="application/problem+json")
        body = await request.body()  # before waiting: order hangs up after its timeout
        if reserving and late == "request":
            await asyncio.sleep(SLOW)
        async with httpx.AsyncClient(base_url=upstream) as client:
            answer = await client.request(
                request.method,
                f"/{path}",
                content=body,
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            )
        if reserving:
            app.state.reservations.append(answer)
        if reserving and late == "answer":
            await asyncio.sleep(SLOW)
        return Response(answer.content, answer.status_code, media_type="application/json")

    return app


@dataclass
class Impatient:
    """An order service that waits 0.5 s for inventory, behind the slow link."""

    late: str
    http: httpx.Client
    database: str
    proxy: FastAPI


@pytest.fixture(scope="module", params=["answer", "request"])
def impatient(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    issuer: str,
    inventory_server: ServerThread,
) -> Iterator[Impatient]:
    tmp: Path = tmp_path_factory.mktemp("order-impatient")
    proxy_app = slow_reservations(inventory_server.base_url, request.param)
    with ServerThread(proxy_app) as proxy:
        settings = make_settings(
            tmp,
            issuer,
            inventory_url=proxy.base_url,
            inventory_timeout=0.5,
            run_payment_consumer=False,
            run_outbox_relay=False,
        )
        with (
            ServerThread(create_app(settings)) as server,
            httpx.Client(base_url=server.base_url, timeout=30) as client,
        ):
            yield Impatient(request.param, client, settings.database_url, proxy_app)


def test_a_reservation_answered_too_late_is_released(
    impatient: Impatient,
    inventory: httpx.Client,
    inventory_db: str,
    alice: str,
    alice_id: str,
) -> None:
    product = add_product(inventory_db, 10)
    reservations: list[httpx.Response] = impatient.proxy.state.reservations
    reservations.clear()

    body = order_body((product, 4))
    response = impatient.http.post("/orders", json=body, headers=bearer(alice))
    assert_problem(response, 503, "inventory-unavailable")
    assert sqlite_count(impatient.database, "SELECT count(*) FROM orders") == 0
    assert customer_holds(impatient.database, alice_id) == (0, 0)

    deadline = time.monotonic() + 10
    while not reservations and time.monotonic() < deadline:
        time.sleep(0.05)
    [reserved] = reservations  # the reservation did reach inventory, late one way or the other
    if impatient.late == "answer":
        # Inventory reserved at once; the release (order's compensation) gave the units back.
        assert reserved.status_code == 201
    else:
        # Asked after the release, which left a released reservation in its place: refused.
        assert reserved.status_code == 409
        assert reserved.json()["type"].endswith("/reservation-conflict")
    assert available(inventory, product) == 10


def test_a_release_that_fails_keeps_the_hold_until_the_expiry_job_releases_it(
    tmp_path: Path,
    issuer: str,
    inventory_server: ServerThread,
    inventory: httpx.Client,
    inventory_db: str,
    bob: str,
    bob_id: str,
) -> None:
    # The answer is lost and the compensating release fails too: giving the hold back then
    # would forget the reserved units for good. The hold stays, dated back; the expiry
    # job's next pass after inventory answers again releases the units and gives it back
    # (long before the payment timeout, 900 s here, would make the hold stale).
    proxy_app = slow_reservations(inventory_server.base_url, "answer")
    proxy_app.state.releases_down = True
    product = add_product(inventory_db, 10)
    with ServerThread(proxy_app) as proxy:
        settings = make_settings(
            tmp_path,
            issuer,
            inventory_url=proxy.base_url,
            inventory_timeout=0.5,
            run_payment_consumer=False,
            run_outbox_relay=False,
            run_expiry_scheduler=True,
            expiry_interval=0.2,
        )
        with (
            ServerThread(create_app(settings)) as server,
            httpx.Client(base_url=server.base_url, timeout=30) as http,
        ):
            response = http.post("/orders", json=order_body((product, 4)), headers=bearer(bob))
            assert_problem(response, 503, "inventory-unavailable")
            time.sleep(SLOW + 1.5)  # past the answer, and several expiry passes
            assert customer_holds(settings.database_url, bob_id) == (1, 4)
            assert available(inventory, product) == 6

            proxy_app.state.releases_down = False
            deadline = time.monotonic() + 10
            while customer_holds(settings.database_url, bob_id) != (0, 0):
                assert time.monotonic() < deadline, "the expiry job never gave the hold back"
                time.sleep(0.1)
            assert available(inventory, product) == 10
