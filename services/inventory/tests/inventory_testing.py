"""Helpers for the inventory tests: settings, products written through our own code, tokens."""

from __future__ import annotations

import asyncio
import itertools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from auth_testing import exchanged, gateway_token
from hopkit.db import create_engine, session_factory
from inventory_service.config import Settings
from inventory_service.models import Base
from inventory_service.seed import DemoProduct, ensure_product
from sqlalchemy.engine import Connection

PROBLEMS = "https://hopshop.example/problems/"
_skus = itertools.count(1)


def make_settings(tmp: Path, issuer: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "issuer": issuer,
        "database_url": f"sqlite:///{tmp / 'inventory.db'}",
        "json_logs": False,
        "access_log": False,
        # The tests here are about other things and mint plain bearer tokens; DPoP
        # (on by default) has its own tests in test_dpop.py.
        "dpop": False,
        **overrides,
    }
    return Settings.model_validate(values)


def add_product(
    database_url: str,
    quantity: int,
    price_cents: int = 1000,
    *,
    max_held_per_customer: int | None = None,
) -> int:
    """A fresh product with ``quantity`` units, added with the service's own seeding code.

    Runs on a loop of its own (in a worker thread), so sync and async tests can both call it.
    """
    product = DemoProduct(
        f"TEST-{next(_skus):04d}",
        "Test product",
        price_cents,
        quantity,
        max_held_per_customer=max_held_per_customer,
    )

    async def add() -> int:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine).begin() as session:
                return await ensure_product(session, product)
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, add()).result()


def reserve_token(auth: httpx.Client, username: str = "alice") -> str:
    """The real chain: user logs in -> gateway exchanges for order -> order exchanges for us."""
    at_order = gateway_token(auth, username, "order", "orders:write")
    return exchanged(auth, "order", at_order, "inventory", "inventory:reserve")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reservation(order_id: str, *lines: tuple[int, int]) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "items": [{"product_id": product, "quantity": quantity} for product, quantity in lines],
    }


async def one_customer_rush(
    base_url: str, token: str, product_id: int, prefix: str, orders: int = 10
) -> list[httpx.Response]:
    """``orders`` reservations of one unit each, for one customer, sent at once."""
    async with httpx.AsyncClient(base_url=base_url, headers=bearer(token), timeout=30) as client:
        return await asyncio.gather(
            *(
                client.post("/reservations", json=reservation(f"{prefix}-{n}", (product_id, 1)))
                for n in range(orders)
            )
        )


def available(http: httpx.Client, product_id: int) -> int:
    response = http.get(f"/products/{product_id}")
    assert response.status_code == 200, response.text
    units: int = response.json()["available"]
    return units


def assert_problem(
    response: httpx.Response, status: int, type_: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if type_ is not None:
        assert body["type"] == (type_ if ":" in type_ else PROBLEMS + type_), body
    return body


def differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))
