"""Settings for the notification service.

Env prefix ``NOTIFICATION_`` plus the common ``HOPSHOP_`` variables (DESIGN.md,
Configuration), and ``HOPSHOP_AUTH_URL``, ``HOPSHOP_ORDER_URL`` and
``HOPSHOP_BILLING_URL`` (docs/internal-api.md): where the worker finds the user
directory and the token endpoint, and the services it checks events with.
"""

from __future__ import annotations

from typing import Self

from hopkit.settings import CommonSettings
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

#: The audience id of this service: tokens must be addressed to it (``aud``).
AUDIENCE = "notification"

#: The worker's own OAuth client, and what it asks for: the user directory at auth,
#: and the owners of what an event claims (an order at order, a payment at billing).
WORKER_CLIENT_ID = "notification-worker"
DIRECTORY_AUDIENCE = "auth"
DIRECTORY_SCOPE = "users:read"
ORDER_AUDIENCE = "order"
ORDER_SCOPE = "orders:status"
BILLING_AUDIENCE = "billing"
BILLING_SCOPE = "payments:verify"

#: The demo realm's secret for the worker (DESIGN.md): public, so refused in production.
DEV_WORKER_SECRET = "notification-worker-dev-secret"  # noqa: S105 - the published demo secret


class Settings(CommonSettings):
    model_config = SettingsConfigDict(
        env_prefix="NOTIFICATION_",
        extra="ignore",
        populate_by_name=True,
        # A validation error would otherwise quote the environment, secret included.
        hide_input_in_errors=True,
    )

    database_url: str = "sqlite:///var/notification.db"
    auto_migrate: bool = True
    # How long the issuer's signing keys are cached before a routine refresh.
    jwks_ttl: float = Field(default=300.0, gt=0)
    # This service's own base URL, as its callers are given it: DPoP proofs must name it
    # (RFC 9449 §4.3 point 9), whatever Host header they arrive with.
    notification_url: str = Field(
        default="http://127.0.0.1:8005", validation_alias=AliasChoices("HOPSHOP_NOTIFICATION_URL")
    )
    # Base URL of the auth service; unset means the issuer's URL.
    auth_url: str | None = Field(default=None, validation_alias=AliasChoices("HOPSHOP_AUTH_URL"))
    # Where the worker checks what an event claims before it tells anyone (order.*, payment.*).
    order_url: str = Field(
        default="http://127.0.0.1:8002", validation_alias=AliasChoices("HOPSHOP_ORDER_URL")
    )
    billing_url: str = Field(
        default="http://127.0.0.1:8004", validation_alias=AliasChoices("HOPSHOP_BILLING_URL")
    )

    # The Kafka worker runs inside this process (lifespan tasks); off for an API-only replica.
    worker_enabled: bool = True
    worker_client_secret: SecretStr = SecretStr(DEV_WORKER_SECRET)
    consumer_group: str = Field(default="notification", min_length=1)
    # An event is tried this many times (exponential backoff between first and max
    # seconds) before it goes to the DLQ: long enough to ride out an auth restart.
    consumer_max_attempts: int = Field(default=8, ge=1, le=100)
    consumer_backoff_first: float = Field(default=0.5, gt=0)
    consumer_backoff_max: float = Field(default=30.0, gt=0)
    # Group membership timing. Tansu makes a joining member wait about half the session
    # timeout, so tests shorten it.
    consumer_session_timeout_ms: int = Field(default=10_000, ge=500)
    consumer_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    # The directory call runs inside the event's transaction: keep it short.
    directory_timeout: float = Field(default=3.0, gt=0, le=30)
    # The same for the calls to order and billing that check an event.
    owner_timeout: float = Field(default=3.0, gt=0, le=30)
    # Seconds a contact the directory found is reused (notification_service.contacts):
    # a changed email reaches notifications within this. 0 asks the directory every time.
    contact_ttl: float = Field(default=60.0, ge=0, le=3600)

    @property
    def origins(self) -> tuple[str, ...]:
        """Where callers reach this service: what a DPoP proof may name (RFC 9449 §4.3 point 9)."""
        return (self.notification_url,)

    @property
    def auth_base_url(self) -> str:
        return (self.auth_url or self.issuer).rstrip("/")

    @model_validator(mode="after")
    def _worker_needs_kafka_and_a_real_secret(self) -> Self:
        if not self.worker_enabled:
            return self
        if not self.kafka_bootstrap:
            raise ValueError(
                "the notification worker needs HOPSHOP_KAFKA_BOOTSTRAP; "
                "set NOTIFICATION_WORKER_ENABLED=false to run the API alone"
            )
        secret = self.worker_client_secret.get_secret_value()
        if not secret:
            raise ValueError("NOTIFICATION_WORKER_CLIENT_SECRET must not be empty")
        if self.is_production and secret == DEV_WORKER_SECRET:
            raise ValueError(
                "NOTIFICATION_WORKER_CLIENT_SECRET is the public demo secret; "
                "it is refused when HOPSHOP_ENV=production"
            )
        if self.consumer_backoff_first > self.consumer_backoff_max:
            raise ValueError("NOTIFICATION_CONSUMER_BACKOFF_FIRST exceeds ..._BACKOFF_MAX")
        return self
