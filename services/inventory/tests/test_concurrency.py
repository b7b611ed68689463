"""50 buyers at once for the last 10 units: exactly 10 get one, nobody oversells; one customer's
reservations at once of a product capped per customer: exactly the cap passes."""

from __future__ import annotations

import asyncio

import httpx
from inventory_testing import add_product, available, bearer, one_customer_rush, reservation

BUYERS = 50
UNITS = 10


async def test_fifty_concurrent_buyers_for_ten_items(
    http: httpx.Client, inventory_server: object, database_url: str, reserver: str
) -> None:
    product = add_product(database_url, UNITS)
    limits = httpx.Limits(max_connections=BUYERS)
    async with httpx.AsyncClient(
        base_url=http.base_url, headers=bearer(reserver), limits=limits, timeout=30
    ) as client:
        responses = await asyncio.gather(
            *(
                client.post("/reservations", json=reservation(f"rush-{n}", (product, 1)))
                for n in range(BUYERS)
            )
        )
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(201) == UNITS, [
        r.text for r in responses if r.status_code not in (201, 409)
    ]
    assert statuses.count(409) == BUYERS - UNITS
    for response in responses:
        if response.status_code == 409:
            assert response.json()["type"].endswith("/insufficient-stock")
    assert available(http, product) == 0


async def test_concurrent_repeats_of_one_order_reserve_once(
    http: httpx.Client, database_url: str, reserver: str
) -> None:
    product = add_product(database_url, UNITS)
    async with httpx.AsyncClient(
        base_url=http.base_url, headers=bearer(reserver), timeout=30
    ) as client:
        responses = await asyncio.gather(
            *(
                client.post("/reservations", json=reservation("twice", (product, 3)))
                for _ in range(10)
            )
        )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 9 + [201]
    assert len({response.json()["reservation_id"] for response in responses}) == 1
    assert available(http, product) == UNITS - 3


async def test_one_customers_concurrent_reservations_get_exactly_the_cap(
    http: httpx.Client, database_url: str, reserver: str
) -> None:
    product = add_product(database_url, 50, max_held_per_customer=2)
    answers = await one_customer_rush(str(http.base_url), reserver, product, "cap-rush")
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(201) == 2, [a.text for a in answers if a.status_code != 201]
    assert statuses.count(409) == len(answers) - 2
    assert all(
        a.json()["type"].endswith("/hold-limit-reached") for a in answers if a.status_code == 409
    )
    assert available(http, product) == 48
