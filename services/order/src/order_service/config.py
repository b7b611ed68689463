"""Settings for the order service.

Env prefix ``ORDER_`` plus the common ``HOPSHOP_`` variables (DESIGN.md,
Configuration): ``ORDER_DATABASE_URL``, ``ORDER_PAYMENT_TIMEOUT``,
``ORDER_MAX_OPEN_ORDERS``, ``ORDER_MAX_OPEN_UNITS``, ``ORDER_CLIENT_SECRET`` ...
and the base URLs that the stack sets: its own (``HOPSHOP_ORDER_URL``) and the
neighbours' (``HOPSHOP_INVENTORY_URL``, ``HOPSHOP_BILLING_URL``, ``HOPSHOP_AUTH_URL``).
"""

from __future__ import annotations

from typing import Self

from hopkit.settings import CommonSettings
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from .limits import Limits

#: The audience id of this service: tokens must be addressed to it (``aud``).
AUDIENCE = "order"
#: The service's own OAuth client (token exchange towards inventory; client credentials).
CLIENT_ID = "order"
#: The expiry job's OAuth client: a job of its own, with no more than ``inventory:release``
#: at inventory and ``payments:verify`` at billing (expiry.py).
SCHEDULER_CLIENT_ID = "order-scheduler"
#: The Kafka consumer group of the payment-event consumer.
CONSUMER_GROUP = "order"


def _dev_secret(client_id: str) -> str:
    return f"{client_id}-dev-secret"


class Settings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="ORDER_", extra="ignore", populate_by_name=True)

    database_url: str = "sqlite:///var/order.db"
    auto_migrate: bool = True
    # How long the issuer's signing keys are cached before a routine refresh.
    jwks_ttl: float = Field(default=300.0, gt=0)

    # This service's own base URL, as its callers are given it: DPoP proofs must name it
    # (RFC 9449 §4.3 point 9), whatever Host header they arrive with.
    order_url: str = Field(
        default="http://127.0.0.1:8002", validation_alias=AliasChoices("HOPSHOP_ORDER_URL")
    )
    # Where the neighbours are (set by the stack for every started service).
    inventory_url: str = Field(
        default="http://127.0.0.1:8003", validation_alias=AliasChoices("HOPSHOP_INVENTORY_URL")
    )
    # The authorization server's base URL for the token endpoint; the issuer when unset.
    auth_url: str | None = Field(default=None, validation_alias=AliasChoices("HOPSHOP_AUTH_URL"))
    inventory_timeout: float = Field(default=5.0, gt=0)
    # Billing, asked whether a payment event is true before the consumer acts on it.
    billing_url: str = Field(
        default="http://127.0.0.1:8004", validation_alias=AliasChoices("HOPSHOP_BILLING_URL")
    )
    billing_timeout: float = Field(default=5.0, gt=0)

    # Client secrets; unset means the demo realm's `<client_id>-dev-secret` outside production.
    client_secret: SecretStr | None = None
    scheduler_client_secret: SecretStr | None = None

    # Unpaid orders are cancelled (reason `expired`) this many seconds after they were placed.
    payment_timeout: float = Field(default=900.0, gt=0)
    # What one customer's unpaid orders may hold at a time (limits.py): so many orders, so
    # many units together (also the most one order may hold). Load tests raise both.
    max_open_orders: int = Field(default=5, ge=1)
    max_open_units: int = Field(default=50, ge=1)
    # How often the expiry job looks for overdue orders, and how many it takes per pass.
    expiry_interval: float = Field(default=10.0, gt=0)
    expiry_batch: int = Field(default=100, ge=1, le=1000)

    # Background work in the service process; tests turn parts off.
    run_outbox_relay: bool = True
    run_payment_consumer: bool = True
    run_expiry_scheduler: bool = True
    outbox_poll_interval: float = Field(default=1.0, gt=0)
    # Kafka group session; short in tests (Tansu makes a joining member wait half of it).
    consumer_session_timeout_ms: int = Field(default=10_000, ge=500)
    # A payment event whose handler keeps failing (inventory down) is retried this many times,
    # backing off up to 30 s, before it goes to the DLQ: a few minutes of outage are absorbed.
    consumer_max_attempts: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> Self:
        if self.is_production:
            for name, value, client_id in (
                ("ORDER_CLIENT_SECRET", self.client_secret, CLIENT_ID),
                (
                    "ORDER_SCHEDULER_CLIENT_SECRET",
                    self.scheduler_client_secret,
                    SCHEDULER_CLIENT_ID,
                ),
            ):
                if value is None or value.get_secret_value() in ("", _dev_secret(client_id)):
                    raise ValueError(
                        f"{name} must be set to a real secret when HOPSHOP_ENV=production: "
                        "the demo realm's client secrets are public"
                    )
        return self

    @property
    def origins(self) -> tuple[str, ...]:
        """Where callers reach this service: what a DPoP proof may name (RFC 9449 §4.3 point 9)."""
        return (self.order_url,)

    @property
    def order_limits(self) -> Limits:
        return Limits(max_orders=self.max_open_orders, max_units=self.max_open_units)

    @property
    def order_secret(self) -> str:
        return _secret(self.client_secret, CLIENT_ID)

    @property
    def scheduler_secret(self) -> str:
        return _secret(self.scheduler_client_secret, SCHEDULER_CLIENT_ID)

    @property
    def token_url(self) -> str:
        return (self.auth_url or self.issuer).rstrip("/") + "/token"


def _secret(value: SecretStr | None, client_id: str) -> str:
    return value.get_secret_value() if value is not None else _dev_secret(client_id)
