"""hopauth: receive and send OAuth 2 access tokens between services.

Receiving side: :class:`AccessTokenValidator` (RFC 9068) with a
:class:`KeySource` such as :class:`JWKSCache`. Sending side:
:class:`TokenExchanger` / :class:`TokenExchangeAuth` (RFC 8693) and
:class:`ClientCredentials` / :class:`ClientCredentialsAuth` (RFC 6749 §4.4).
DPoP (RFC 9449): a :class:`DPoPKey` given to :class:`TokenEndpoint` binds the
tokens it gets and sends proofs with them; a :class:`DPoPProofValidator`
checks proofs on the receiving side.

Adapters live in their own modules and need extras: ``hopauth.fastapi``
(``fastapi``), ``hopauth.redis_revocation``, ``hopauth.redis_cache`` and
``hopauth.redis_replay`` (``redis``).
"""

from ._cache_stats import CacheStats
from .client_credentials import (
    ClientCredentials,
    ClientCredentialsAuth,
    MemoryTokenCache,
    TokenCache,
)
from .constants import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT
from .errors import (
    HopAuthError,
    InvalidDPoPProofError,
    InvalidTokenError,
    RevocationUnavailableError,
    TokenRequestError,
)
from .jwks import JWKSCache, KeySource, StaticKeySource
from .principal import Principal
from .revocation import RevocationChecker, revoked_session_key
from .rfc8693 import TokenExchangeAuth, TokenExchanger
from .rfc9068 import AccessTokenValidator
from .rfc9449 import (
    DPoPKey,
    DPoPProof,
    DPoPProofValidator,
    MemoryReplayCache,
    ReplayCache,
)
from .token_client import TokenEndpoint, TokenResponse

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "TOKEN_EXCHANGE_GRANT",
    "AccessTokenValidator",
    "CacheStats",
    "ClientCredentials",
    "ClientCredentialsAuth",
    "DPoPKey",
    "DPoPProof",
    "DPoPProofValidator",
    "HopAuthError",
    "InvalidDPoPProofError",
    "InvalidTokenError",
    "JWKSCache",
    "KeySource",
    "MemoryReplayCache",
    "MemoryTokenCache",
    "Principal",
    "ReplayCache",
    "RevocationChecker",
    "RevocationUnavailableError",
    "StaticKeySource",
    "TokenCache",
    "TokenEndpoint",
    "TokenExchangeAuth",
    "TokenExchanger",
    "TokenRequestError",
    "TokenResponse",
    "revoked_session_key",
]
