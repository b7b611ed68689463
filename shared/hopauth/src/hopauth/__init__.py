"""hopauth: receive and send OAuth 2 access tokens between services.

Receiving side: :class:`AccessTokenValidator` (RFC 9068) with a
:class:`KeySource` such as :class:`JWKSCache`. Sending side:
:class:`TokenExchanger` / :class:`TokenExchangeAuth` (RFC 8693) and
:class:`ClientCredentials` / :class:`ClientCredentialsAuth` (RFC 6749 §4.4).

Adapters live in their own modules and need extras: ``hopauth.fastapi``
(``fastapi``), ``hopauth.redis_revocation`` and ``hopauth.redis_cache``
(``redis``).
"""

from ._cache_stats import CacheStats
from .client_credentials import (
    ClientCredentials,
    ClientCredentialsAuth,
    MemoryTokenCache,
    TokenCache,
)
from .constants import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT
from .errors import HopAuthError, InvalidTokenError, TokenRequestError
from .jwks import JWKSCache, KeySource, StaticKeySource
from .principal import Principal
from .revocation import RevocationChecker, revoked_session_key
from .rfc8693 import TokenExchangeAuth, TokenExchanger
from .rfc9068 import AccessTokenValidator
from .token_client import TokenEndpoint, TokenResponse

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "TOKEN_EXCHANGE_GRANT",
    "AccessTokenValidator",
    "CacheStats",
    "ClientCredentials",
    "ClientCredentialsAuth",
    "HopAuthError",
    "InvalidTokenError",
    "JWKSCache",
    "KeySource",
    "MemoryTokenCache",
    "Principal",
    "RevocationChecker",
    "StaticKeySource",
    "TokenCache",
    "TokenEndpoint",
    "TokenExchangeAuth",
    "TokenExchanger",
    "TokenRequestError",
    "TokenResponse",
    "revoked_session_key",
]
