"""The common ``HOPSHOP_`` settings every service reads (DESIGN.md, Configuration).

A service subclasses :class:`CommonSettings` with its own ``env_prefix``
(``ORDER_``, ``INVENTORY_`` ...); the common fields keep their ``HOPSHOP_``
names whatever the prefix.

``HOPSHOP_DPOP`` (default ``true``) is the one switch for sender-constrained
tokens (RFC 9449): each OAuth client a process acts as gets its own key, the
tokens it obtains are bound to that key and sent with a fresh proof, and the
service checks proofs on what it receives (see :mod:`hopkit.dpop`). It takes
effect in exchange mode only (:attr:`CommonSettings.dpop_enabled`): forward
mode passes the user's own bearer token along, which nothing binds.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Self

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Propagation(StrEnum):
    """How identity travels downstream. ``forward`` is the vulnerable teaching mode."""

    EXCHANGE = "exchange"
    FORWARD = "forward"


class CommonSettings(BaseSettings):
    # hide_input_in_errors: a refused setting must not print its value (a secret, say).
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    env: Environment = Field(
        default=Environment.DEVELOPMENT, validation_alias=AliasChoices("HOPSHOP_ENV")
    )
    propagation: Propagation = Field(
        default=Propagation.EXCHANGE, validation_alias=AliasChoices("HOPSHOP_PROPAGATION")
    )
    issuer: str = Field(
        default="http://127.0.0.1:8001", validation_alias=AliasChoices("HOPSHOP_ISSUER")
    )
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("HOPSHOP_REDIS_URL"))
    kafka_bootstrap: str | None = Field(
        default=None, validation_alias=AliasChoices("HOPSHOP_KAFKA_BOOTSTRAP")
    )
    dpop: bool = Field(default=True, validation_alias=AliasChoices("HOPSHOP_DPOP"))
    json_logs: bool = True
    access_log: bool = True
    log_level: str = "INFO"

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def dpop_enabled(self) -> bool:
        """DPoP on (RFC 9449): ``HOPSHOP_DPOP`` and token exchange.

        Forward mode is always bearer: the forwarded user tokens are not
        bound, and a forwarding system has no sender constraint to offer.
        """
        return self.dpop and self.propagation is Propagation.EXCHANGE

    @model_validator(mode="after")
    def _refuse_forwarding_in_production(self) -> Self:
        if self.propagation is Propagation.FORWARD and self.is_production:
            raise ValueError(
                "HOPSHOP_PROPAGATION=forward is the vulnerable teaching mode; "
                "it is refused when HOPSHOP_ENV=production"
            )
        return self
