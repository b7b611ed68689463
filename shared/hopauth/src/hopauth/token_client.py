"""A client of the token endpoint (RFC 6749 §3.2), authenticating with a secret.

With a :class:`~hopauth.rfc9449.DPoPKey` every token request carries a DPoP
proof and every token issued is bound to that key (RFC 9449 §5).

Low level: one HTTP request per call, no caching. See
:mod:`hopauth.client_credentials` and :mod:`hopauth.rfc8693` for the cached,
single-flight layers built on it.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import httpx

from .constants import ACCESS_TOKEN_TYPE, CLIENT_CREDENTIALS_GRANT, TOKEN_EXCHANGE_GRANT
from .errors import HopAuthError, TokenRequestError
from .rfc9449 import DPoPKey, token_endpoint_nonce

__all__ = ["TokenEndpoint", "TokenResponse"]

logger = logging.getLogger(__name__)

#: Server-supplied ``error`` and ``error_description`` are cut to these
#: lengths before they go into an exception message.
_MAX_ERROR = 100
_MAX_DESCRIPTION = 300


@dataclass(frozen=True)
class TokenResponse:
    """A successful access token response (RFC 6749 §5.1, RFC 8693 §2.2.1).

    ``expires_at`` is wall-clock Unix time (``time.time()`` when the response
    arrived plus ``expires_in``), so it can be shared between processes.
    ``scope`` is the granted scope; when the server omits it, RFC 6749 §5.1
    says it equals the requested scope, and that is what it holds then.
    """

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int
    scope: frozenset[str]
    issued_token_type: str | None
    expires_at: float


class TokenEndpoint:
    """Sends token requests as a confidential client using ``client_secret_basic``.

    With ``dpop_key`` (the one switch for DPoP on the sending side), each
    request carries a proof for ``POST token_url`` (RFC 9449 §5) and a
    response must say ``token_type: DPoP``: a server that ignored the proof
    would otherwise hand out a bearer token without anyone noticing. A 400
    ``use_dpop_nonce`` is answered once with a proof carrying the server's
    nonce (§8). Without a key, tokens are bearer tokens (RFC 6750).
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        http: httpx.AsyncClient,
        dpop_key: DPoPKey | None = None,
    ) -> None:
        self._token_url = token_url
        self._client_id = client_id
        self._http = http
        self._dpop_key = dpop_key
        # RFC 6749 §2.3.1: id and secret are form-urlencoded before being
        # joined and base64-encoded, so a ':' in either survives the trip.
        credentials = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
        self._authorization = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
        self._secrets: tuple[str, ...] = (client_secret,)

    @property
    def client_id(self) -> str:
        return self._client_id

    @property
    def token_url(self) -> str:
        return self._token_url

    @property
    def dpop_key(self) -> DPoPKey | None:
        """The key tokens are bound to (RFC 9449), or None for bearer tokens."""
        return self._dpop_key

    def __repr__(self) -> str:
        dpop = f", dpop_key={self._dpop_key!r}" if self._dpop_key is not None else ""
        return f"TokenEndpoint(token_url={self._token_url!r}, client_id={self._client_id!r}{dpop})"

    async def client_credentials(
        self, *, audience: str | None, scopes: Iterable[str]
    ) -> TokenResponse:
        """Client credentials grant (RFC 6749 §4.4.2), optionally for one ``audience``."""
        requested = frozenset(scopes)
        form = {"grant_type": CLIENT_CREDENTIALS_GRANT}
        if requested:
            form["scope"] = " ".join(sorted(requested))
        if audience is not None:
            form["audience"] = audience
        return await self._request(form, requested, secrets=())

    async def exchange(
        self,
        *,
        subject_token: str,
        audience: str,
        scopes: Iterable[str],
        actor_token: str | None = None,
    ) -> TokenResponse:
        """Token exchange (RFC 8693 §2.1) of an access token for one audience."""
        requested = frozenset(scopes)
        form = {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": subject_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": audience,
            "requested_token_type": ACCESS_TOKEN_TYPE,
        }
        if requested:
            form["scope"] = " ".join(sorted(requested))
        secrets = [subject_token]
        if actor_token is not None:
            form["actor_token"] = actor_token
            form["actor_token_type"] = ACCESS_TOKEN_TYPE
            secrets.append(actor_token)
        return await self._request(form, requested, secrets=tuple(secrets))

    async def delegate(
        self,
        *,
        actor_token: str,
        requested_subject: str,
        audience: str,
        scopes: Iterable[str],
    ) -> TokenResponse:
        """Token exchange naming the subject instead of presenting its token.

        RFC 8693 §2.1 requires ``subject_token``; ``requested_subject`` (the
        name Keycloak uses) is an extension for delegation where the client
        holds only the actor's token: support staff acting for a customer. The
        issuer decides whether the actor may act for that subject. Not cached:
        such calls are rare, and each is an audited decision at the issuer.
        """
        requested = frozenset(scopes)
        form = {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "actor_token": actor_token,
            "actor_token_type": ACCESS_TOKEN_TYPE,
            "requested_subject": requested_subject,
            "audience": audience,
            "requested_token_type": ACCESS_TOKEN_TYPE,
        }
        if requested:
            form["scope"] = " ".join(sorted(requested))
        return await self._request(form, requested, secrets=(actor_token,))

    async def _request(
        self, form: dict[str, str], requested: frozenset[str], *, secrets: tuple[str, ...]
    ) -> TokenResponse:
        headers = {"Authorization": self._authorization, "Accept": "application/json"}
        if self._dpop_key is not None:
            headers["DPoP"] = self._dpop_key.proof("POST", self._token_url)
        response = await self._http.post(self._token_url, data=form, headers=headers)
        if self._dpop_key is not None and (nonce := token_endpoint_nonce(response)) is not None:
            # RFC 9449 §8: the server wants a nonce in the proof; one retry with it.
            headers["DPoP"] = self._dpop_key.proof("POST", self._token_url, nonce=nonce)
            response = await self._http.post(self._token_url, data=form, headers=headers)
        body = _json_body(response)
        if not response.is_success:
            raise self._refusal(response.status_code, body, secrets + self._secrets)
        if body is None:
            raise HopAuthError(f"token endpoint returned a non-JSON {response.status_code}")
        return _parse_success(body, requested, dpop=self._dpop_key is not None)

    def _refusal(
        self, status_code: int, body: dict[str, Any] | None, secrets: tuple[str, ...]
    ) -> TokenRequestError:
        """RFC 6749 §5.2 error response to an exception that holds no secret."""
        error = _redacted(body.get("error") if body else None, secrets) or "invalid_response"
        description = _redacted(body.get("error_description") if body else None, secrets)
        error = error[:_MAX_ERROR]
        if description is not None:
            description = description[:_MAX_DESCRIPTION]
        logger.info(
            "token request by %s refused: %s (HTTP %d)", self._client_id, error, status_code
        )
        return TokenRequestError(error, description, status_code)


def _redacted(value: object, secrets: tuple[str, ...]) -> str | None:
    """A server-supplied string with every secret we sent cut out.

    A careless server might echo what it was sent; that must never reach an
    exception message (and from there a log).
    """
    if not isinstance(value, str) or not value:
        return None
    for secret in secrets:
        if secret:
            value = value.replace(secret, "[redacted]")
    return value


def _json_body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _parse_success(body: dict[str, Any], requested: frozenset[str], *, dpop: bool) -> TokenResponse:
    access_token = body.get("access_token")
    token_type = body.get("token_type")
    expires_in = body.get("expires_in")
    if not isinstance(access_token, str) or not access_token:
        raise HopAuthError("token response has no access_token")
    # A proof was sent, so the token must be bound (RFC 9449 §5); without one,
    # Bearer is all this client can send (RFC 6750). RFC 6749 §7.1 makes the
    # comparison case-insensitive.
    expected = "DPoP" if dpop else "Bearer"
    if not isinstance(token_type, str) or token_type.lower() != expected.lower():
        raise HopAuthError(f"token response token_type is not {expected}")
    # expires_in is only RECOMMENDED (RFC 6749 §5.1), but without it a cache
    # cannot know when to refresh, so it is required here.
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
        raise HopAuthError("token response has no positive integer expires_in")
    scope = body.get("scope")
    granted = frozenset(s for s in scope.split(" ") if s) if isinstance(scope, str) else requested
    issued_token_type = body.get("issued_token_type")
    return TokenResponse(
        access_token=access_token,
        token_type=token_type,
        expires_in=expires_in,
        scope=granted,
        issued_token_type=issued_token_type if isinstance(issued_token_type, str) else None,
        expires_at=time.time() + expires_in,
    )
