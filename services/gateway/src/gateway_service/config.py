"""Settings for the gateway.

Env prefix ``GATEWAY_`` plus the common ``HOPSHOP_`` variables (DESIGN.md,
Configuration) and the service base URLs of docs/internal-api.md
(``HOPSHOP_AUTH_URL``, ``HOPSHOP_ORDER_URL`` ...).
"""

from __future__ import annotations

from typing import Any, Self

from hopkit.settings import CommonSettings
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

#: The audience id of this service: user tokens must be addressed to it (``aud``).
AUDIENCE = "gateway"
#: The only client whose user tokens the public API accepts: the web UI (code + PKCE).
WEB_CLIENT = "web"
#: The demo realm's secret for the gateway client; public, so refused in production.
DEV_CLIENT_SECRET = "gateway-dev-secret"  # noqa: S105 - the documented demo secret


def _url(variable: str, port: int) -> Any:
    """A service base URL read from ``HOPSHOP_<NAME>_URL``, defaulting to DESIGN.md's port."""
    return Field(default=f"http://127.0.0.1:{port}", validation_alias=AliasChoices(variable))


class Settings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", populate_by_name=True)

    # The gateway's own client at the issuer: it exchanges tokens and gets its own.
    client_id: str = "gateway"
    client_secret: SecretStr = SecretStr(DEV_CLIENT_SECRET)

    # Where the services are. The auth URL defaults to the issuer, which is what
    # it is whenever the issuer is reached directly (always, outside a proxy).
    auth_url: str | None = Field(default=None, validation_alias=AliasChoices("HOPSHOP_AUTH_URL"))
    order_url: str = _url("HOPSHOP_ORDER_URL", 8002)
    inventory_url: str = _url("HOPSHOP_INVENTORY_URL", 8003)
    billing_url: str = _url("HOPSHOP_BILLING_URL", 8004)
    notification_url: str = _url("HOPSHOP_NOTIFICATION_URL", 8005)
    # A slow service must not hold a request (and a worker) for long: past this, 504.
    downstream_timeout: float = Field(default=5.0, gt=0)
    # The largest request body read (413 beyond): a full order is a few kB of JSON.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # Per-user rate limit: at most rate_limit requests per rate_window seconds.
    rate_limit: int = Field(default=20, ge=1)
    rate_window: float = Field(default=1.0, ge=0.01, le=3600)
    # Per staff member: at most broadcast_quota broadcasts per broadcast_window seconds.
    # Each reaches every customer, so this is a quota on a person, not a capacity limit.
    broadcast_quota: int = Field(default=10, ge=1)
    broadcast_window: float = Field(default=3600.0, ge=1, le=7 * 24 * 3600)

    # Where browsers reach the gateway and the issuer (the web UI's redirect URI and
    # login page). They differ from the internal URLs behind a proxy or in compose.
    public_url: str = "http://127.0.0.1:8000"
    public_issuer: str | None = None
    # Where services and other clients inside the network reach the gateway. A DPoP
    # proof (RFC 9449 §4.3 point 9) must name this or public_url, whatever its Host header.
    gateway_url: str = _url("HOPSHOP_GATEWAY_URL", 8000)

    # How long the issuer's signing keys are cached before a routine refresh.
    jwks_ttl: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _refuse_demo_secret_in_production(self) -> Self:
        if self.is_production and self.client_secret.get_secret_value() == DEV_CLIENT_SECRET:
            raise ValueError(
                "GATEWAY_CLIENT_SECRET must be set when HOPSHOP_ENV=production: "
                "the demo secret is public"
            )
        return self

    @property
    def token_url(self) -> str:
        return f"{(self.auth_url or self.issuer).rstrip('/')}/token"

    @property
    def origins(self) -> tuple[str, ...]:
        """Where clients reach the gateway: the URLs a DPoP proof may name."""
        return tuple(dict.fromkeys((self.public_url, self.gateway_url)))

    @property
    def browser_issuer(self) -> str:
        return (self.public_issuer or self.issuer).rstrip("/")

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url.rstrip('/')}/callback"

    def service_urls(self) -> dict[str, str]:
        """Base URL of each service the gateway calls, by audience id."""
        return {
            "order": self.order_url.rstrip("/"),
            "inventory": self.inventory_url.rstrip("/"),
            "billing": self.billing_url.rstrip("/"),
            "notification": self.notification_url.rstrip("/"),
        }
