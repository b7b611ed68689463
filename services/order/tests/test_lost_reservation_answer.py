"""A reservation whose answer never arrives is released, not left holding stock.

A timeout is not a refusal: inventory may have reserved before order stopped
waiting. Order answers 503 and, because it cannot know, releases (release is
idempotent and takes "no reservation" as done). The slow link is a small
proxy in front of the real inventory service that holds back the answer to
``POST /reservations`` only, so the release gets through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
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
    wait_for,
)

#: Longer than the order service below waits for inventory.
SLOW = 1.5


def slow_reservations(upstream: str) -> FastAPI:
    """Forwards everything to ``upstream``; the answer to a reservation comes late."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def forward(path: str, request: Request) -> Response:
        async with httpx.AsyncClient(base_url=upstream) as client:
            answer = await client.request(
                request.method,
                f"/{path}",
                content=await request.body(),
                headers={k: v for k, v in request.headers.items() if k.lower() not in ("host",)},
            )
        if request.method == "POST" and path == "reservations":
            await asyncio.sleep(SLOW)
        return Response(answer.content, answer.status_code, media_type="application/json")

    return app


@pytest.fixture(scope="module")
def impatient(
    tmp_path_factory: pytest.TempPathFactory, issuer: str, inventory_server: ServerThread
) -> Iterator[tuple[httpx.Client, str]]:
    tmp: Path = tmp_path_factory.mktemp("order-impatient")
    with ServerThread(slow_reservations(inventory_server.base_url)) as proxy:
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
            yield client, settings.database_url


def test_a_reservation_answered_too_late_is_released(
    impatient: tuple[httpx.Client, str],
    inventory: httpx.Client,
    inventory_db: str,
    alice: str,
    alice_id: str,
) -> None:
    http, database = impatient
    product = add_product(inventory_db, 10)

    response = http.post("/orders", json=order_body((product, 4)), headers=bearer(alice))
    assert_problem(response, 503, "inventory-unavailable")
    assert sqlite_count(database, "SELECT count(*) FROM orders") == 0
    assert customer_holds(database, alice_id) == (0, 0)
    # Inventory did reserve (the answer was only late); the release puts the units back.
    wait_for(lambda: available(inventory, product) == 10, what="the late reservation released")
