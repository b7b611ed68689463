"""Settings for the auth service.

Env prefix ``AUTH_`` plus the common ``HOPSHOP_`` variables (DESIGN.md, Configuration).
Unsafe development defaults are refused outside development.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from hopkit.dpop import as_origins
from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.toml")


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        _ = parts.port  # ValueError when out of range
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not (parts.query or parts.fragment or "@" in parts.netloc)
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AUTH_", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    env: Environment = Field(
        default=Environment.DEVELOPMENT, validation_alias=AliasChoices("HOPSHOP_ENV")
    )
    issuer: str = Field(
        default="http://127.0.0.1:8001", validation_alias=AliasChoices("HOPSHOP_ISSUER")
    )
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("HOPSHOP_REDIS_URL"))
    # Where services reach this server when not at the issuer's URL (the same variable
    # they read), and where browsers and clients outside their network do (docker
    # compose's published port). With the issuer, the only names a DPoP proof's htu
    # may use (RFC 9449 §4.3 point 9): never the Host header a request arrives with.
    auth_url: str | None = Field(default=None, validation_alias=AliasChoices("HOPSHOP_AUTH_URL"))
    public_url: str | None = None
    database_url: str = "sqlite:///var/auth.db"
    policy_file: Path = DEFAULT_POLICY_FILE
    # client id -> redirect URIs registered on top of the policy's (JSON), e.g. the
    # gateway's callback when it runs on another port. Checked at start-up
    # (redirect_uris.add_redirect_uris); still matched exactly (RFC 9700 §4.1.1).
    extra_redirect_uris: dict[str, list[str]] = Field(default_factory=dict)
    # The demo realm (alice, bob, carol and the dev client secrets) is seeded at start-up.
    seed_demo_realm: bool = True
    auto_migrate: bool = True
    access_log: bool = True
    # JSON lines on stderr; tests turn it off to keep pytest's log capture.
    json_logs: bool = True
    log_level: str = "INFO"

    user_token_ttl: int = Field(default=900, ge=60, le=3600)
    service_token_ttl: int = Field(default=300, ge=30, le=300)
    refresh_token_ttl: int = Field(default=8 * 3600, ge=300)
    authorization_code_ttl: int = Field(default=60, ge=10, le=600)
    # How long a retired signing key stays in the JWKS: longer than any token it signed.
    key_retention: int = Field(default=3600, ge=900)
    # How often a replica re-reads signing keys, so a rotation elsewhere reaches it.
    key_reload_interval: float = Field(default=10.0, gt=0)
    max_request_bytes: int = Field(default=16 * 1024, ge=1024)
    # Password checks (argon2, ~64 MiB each) allowed at once; more logins wait their turn.
    login_concurrency: int = Field(default=4, ge=1, le=64)
    # Browser origins allowed to call the token endpoints (the web UI redeems its code there).
    cors_origins: list[str] = ["http://127.0.0.1:8000", "http://localhost:8000"]
    # Longest act chain an exchanged token may carry (hops), so chains stay bounded.
    max_actor_chain: int = Field(default=5, ge=1, le=10)
    # Password guessing (OWASP Authentication Cheat Sheet: throttle, never lock out):
    # failed logins allowed per username and per client IP within one window (s).
    # 5 per 5 minutes leaves a user room for typos and an attacker ~1,400 guesses a
    # day per account; 20 per IP lets a shared office NAT in while stopping one
    # host from spraying a password across many accounts.
    login_max_failures: int = Field(default=5, ge=1, le=1000)
    login_max_failures_per_ip: int = Field(default=20, ge=1, le=100_000)
    login_failure_window: int = Field(default=300, ge=1, le=86_400)

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        issuer = urlsplit(self.issuer)
        if not issuer.scheme or not issuer.netloc or issuer.query or issuer.fragment:
            raise ValueError("HOPSHOP_ISSUER must be an absolute URL without query or fragment")
        for name, url in (
            ("HOPSHOP_AUTH_URL", self.auth_url),
            ("AUTH_PUBLIC_URL", self.public_url),
        ):
            if url is not None and not _is_http_url(url):
                raise ValueError(
                    f"{name} must be an absolute http(s) URL without query or fragment"
                )
        if self.key_retention < self.user_token_ttl + 60:
            # A retired key must stay published for as long as its last token lives.
            raise ValueError("AUTH_KEY_RETENTION must exceed AUTH_USER_TOKEN_TTL by a minute")
        if self.env is Environment.PRODUCTION:
            if self.seed_demo_realm:
                raise ValueError(
                    "AUTH_SEED_DEMO_REALM must be false when HOPSHOP_ENV=production: "
                    "the demo realm's passwords and client secrets are public"
                )
            if issuer.scheme != "https":
                raise ValueError("HOPSHOP_ISSUER must use https when HOPSHOP_ENV=production")
            if self.redis_url is None:
                raise ValueError(
                    "HOPSHOP_REDIS_URL is required when HOPSHOP_ENV=production: "
                    "resource servers learn of revoked sessions through it"
                )
            if self.extra_redirect_uris:
                # Where a client may send codes belongs in the reviewed policy file.
                raise ValueError(
                    "AUTH_EXTRA_REDIRECT_URIS must be empty when HOPSHOP_ENV=production: "
                    "register redirect URIs in the policy file"
                )
        return self

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def origins(self) -> tuple[str, ...]:
        """Where this server is reached: the origins a DPoP proof may name (RFC 9449 §4.3 point 9).

        The issuer's, ``HOPSHOP_AUTH_URL``'s and ``AUTH_PUBLIC_URL``'s, as
        ``scheme://host[:port]``: a proof names one of them and the path this
        server receives (see ``oauth.dpop.checked_proof`` for the token endpoint).
        """
        return as_origins([url for url in (self.issuer, self.auth_url, self.public_url) if url])
