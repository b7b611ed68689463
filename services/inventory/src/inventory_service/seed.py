"""Demo products, seeded at start-up outside production (``INVENTORY_SEED_DEMO_PRODUCTS``).

Seeding adds the products whose SKU is missing and leaves the others (and
their stock) alone, so a restart never resets what customers bought. Only
their ``max_held_per_customer`` follows the seed, so a database seeded before
the caps existed gets them on the next start.
``INVENTORY_SEED_STOCK`` gives every product it adds that many units instead
of the demo's few hundred in all, so a load test can run for more than seconds;
its products are not scarce then, so they get no cap (three customers placing
a hundred orders a second would hit a cap of 1 at once).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from . import repository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DemoProduct:
    sku: str
    name: str
    price_cents: int
    quantity: int
    currency: str = "EUR"
    #: Units one customer's unpaid orders may hold (service.reserve); None: no cap.
    max_held_per_customer: int | None = None


DEMO_PRODUCTS = (
    DemoProduct("HOP-MUG", "Hopshop mug", 1290, 100),
    DemoProduct("HOP-TEE", "Token-exchange T-shirt", 2490, 50),
    DemoProduct("HOP-STICKERS", "Sticker pack: RFC 8693", 490, 500),
    DemoProduct("HOP-HOODIE", "Audience-restricted hoodie", 5900, 20),
    # Scarce: without a cap one customer could hold every unit, unpaid, for ever.
    DemoProduct("HOP-KEY", "Hardware security key", 4500, 10, max_held_per_customer=2),
    DemoProduct("HOP-LAST", "Limited poster (3 left)", 1500, 3, max_held_per_customer=1),
)


async def ensure_product(
    session: AsyncSession, product: DemoProduct, *, stock: int | None = None
) -> int:
    """The product's id, adding it (with ``stock`` units, else its own quantity) if missing.

    With ``stock`` the product is not scarce: it gets no cap on the units one
    customer may hold. An existing product keeps its stock; its cap is set to this one.
    """
    cap = product.max_held_per_customer if stock is None else None
    existing = await repository.product_id_by_sku(session, product.sku)
    if existing is not None:
        if await repository.set_hold_cap(session, existing, cap):
            log.info("hold cap set", extra={"sku": product.sku, "max_held_per_customer": cap})
        return existing
    return await repository.add_product(
        session,
        sku=product.sku,
        name=product.name,
        price_cents=product.price_cents,
        currency=product.currency,
        quantity=product.quantity if stock is None else stock,
        max_held_per_customer=cap,
    )


async def seed_demo_products(
    sessions: async_sessionmaker[AsyncSession], *, stock: int | None = None
) -> None:
    async with sessions.begin() as session:
        for product in DEMO_PRODUCTS:
            await ensure_product(session, product, stock=stock)
    log.info("demo products seeded", extra={"products": len(DEMO_PRODUCTS), "stock": stock})
