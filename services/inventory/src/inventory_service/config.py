"""Settings for the inventory service.

Env prefix ``INVENTORY_`` plus the common ``HOPSHOP_`` variables (DESIGN.md,
Configuration): ``INVENTORY_DATABASE_URL``, ``INVENTORY_SEED_DEMO_PRODUCTS``,
``INVENTORY_SEED_STOCK`` ... and its own base URL, ``HOPSHOP_INVENTORY_URL``.
"""

from __future__ import annotations

from hopkit.settings import CommonSettings
from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

#: The audience id of this service: tokens must be addressed to it (``aud``).
AUDIENCE = "inventory"


class Settings(CommonSettings):
    model_config = SettingsConfigDict(
        env_prefix="INVENTORY_", extra="ignore", populate_by_name=True
    )

    database_url: str = "sqlite:///var/inventory.db"
    # This service's own base URL, as its callers are given it: DPoP proofs must name it
    # (RFC 9449 §4.3 point 9), whatever Host header they arrive with.
    inventory_url: str = Field(
        default="http://127.0.0.1:8003", validation_alias=AliasChoices("HOPSHOP_INVENTORY_URL")
    )
    auto_migrate: bool = True
    # Demo products at start-up; unset means "everywhere but production".
    seed_demo_products: bool | None = None
    # Units of each demo product when it is seeded (unset: the demo's own, 683 in all). For
    # load tests (``INVENTORY_SEED_STOCK=100000``); products already in the catalogue keep theirs.
    seed_stock: int | None = Field(default=None, gt=0)
    # How long the issuer's signing keys are cached before a routine refresh.
    jwks_ttl: float = Field(default=300.0, gt=0)

    @property
    def origins(self) -> tuple[str, ...]:
        """Where callers reach this service: what a DPoP proof may name (RFC 9449 §4.3 point 9)."""
        return (self.inventory_url,)

    @property
    def should_seed(self) -> bool:
        if self.seed_demo_products is None:
            return not self.is_production
        return self.seed_demo_products
