"""Settings for the billing service.

Env prefix ``BILLING_`` plus the common ``HOPSHOP_`` variables (DESIGN.md,
Configuration). The worker's client secret comes from
``BILLING_WORKER_CLIENT_SECRET``; its development default is public (the demo
realm's), so it is refused when ``HOPSHOP_ENV=production``.
"""

from __future__ import annotations

from typing import Self

from hopkit.settings import CommonSettings
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

#: The audience id of this service: tokens must be addressed to it (``aud``).
AUDIENCE = "billing"
#: The confidential client the worker acts as (client credentials, no user behind it).
WORKER_CLIENT_ID = "billing-worker"
#: The Kafka consumer group of the worker (docs/internal-api.md).
CONSUMER_GROUP = "billing"
#: ``producer`` of the events billing emits.
PRODUCER = "billing"

DEV_WORKER_SECRET = "billing-worker-dev-secret"  # noqa: S105 - the demo realm's public secret


class Settings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", extra="ignore", populate_by_name=True)

    database_url: str = "sqlite:///var/billing.db"
    auto_migrate: bool = True
    # How long the issuer's signing keys are cached before a routine refresh.
    jwks_ttl: float = Field(default=300.0, gt=0)

    # This service's own base URL, as its callers are given it: DPoP proofs must name it
    # (RFC 9449 §4.3 point 9), whatever Host header they arrive with.
    billing_url: str = Field(
        default="http://127.0.0.1:8004", validation_alias=AliasChoices("HOPSHOP_BILLING_URL")
    )
    # Where the authoritative orders are (docs/internal-api.md: HOPSHOP_ORDER_URL).
    order_url: str = Field(
        default="http://127.0.0.1:8002", validation_alias=AliasChoices("HOPSHOP_ORDER_URL")
    )
    # Where the authorization server is reached (its token endpoint is <auth_url>/token);
    # the issuer when unset. They differ when the issuer's public name is not reachable here.
    auth_url: str | None = Field(default=None, validation_alias=AliasChoices("HOPSHOP_AUTH_URL"))

    # The Kafka worker (consumer of order.placed + outbox relay) runs inside this process.
    # Unset: it runs when HOPSHOP_KAFKA_BOOTSTRAP is set. true without a broker is an error.
    worker: bool | None = None
    worker_client_secret: SecretStr = SecretStr(DEV_WORKER_SECRET)
    # Attempts at an event before it goes to order.placed.dlq, and the backoff between them
    # (first and largest delay, doubling): long enough to ride out an order service restart.
    worker_max_attempts: int = Field(default=8, ge=1, le=50)
    worker_backoff_first: float = Field(default=0.5, gt=0)
    worker_backoff_max: float = Field(default=30.0, gt=0)
    # Consumer group session: the broker drops a silent member after this long. Tests shorten it.
    kafka_session_timeout_ms: int = Field(default=10_000, ge=500)
    kafka_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    # Seconds the outbox relay waits between polls when nothing woke it.
    outbox_poll_interval: float = Field(default=0.5, gt=0)
    # Seconds a call to the order service may take.
    order_timeout: float = Field(default=5.0, gt=0)

    @property
    def origins(self) -> tuple[str, ...]:
        """Where callers reach this service: what a DPoP proof may name (RFC 9449 §4.3 point 9)."""
        return (self.billing_url,)

    @property
    def runs_worker(self) -> bool:
        if self.worker is None:
            return self.kafka_bootstrap is not None
        return self.worker

    @property
    def resolved_token_url(self) -> str:
        return (self.auth_url or self.issuer).rstrip("/") + "/token"

    @model_validator(mode="after")
    def _refuse_unsafe_settings(self) -> Self:
        if self.worker and self.kafka_bootstrap is None:
            raise ValueError("BILLING_WORKER=true needs HOPSHOP_KAFKA_BOOTSTRAP")
        if self.worker_backoff_first > self.worker_backoff_max:
            raise ValueError("BILLING_WORKER_BACKOFF_FIRST must not exceed _MAX")
        if self.kafka_heartbeat_interval_ms >= self.kafka_session_timeout_ms:
            raise ValueError(
                "BILLING_KAFKA_HEARTBEAT_INTERVAL_MS must be below BILLING_KAFKA_SESSION_TIMEOUT_MS"
            )
        secret = self.worker_client_secret.get_secret_value()
        if self.is_production and self.runs_worker and secret in ("", DEV_WORKER_SECRET):
            raise ValueError(
                "BILLING_WORKER_CLIENT_SECRET must be set when HOPSHOP_ENV=production: "
                "the development secret is public"
            )
        return self
