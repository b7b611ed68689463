"""The authorization server: Authlib's core wired to our storage and tokens."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    InvalidRequestError,
    UnsupportedResponseTypeError,
)
from hopauth import DPoPProofValidator, ReplayCache
from sqlalchemy.orm import Session, sessionmaker

from ..config import Settings
from ..db import transaction
from ..models import RefreshToken, User
from ..policy import Policy
from ..sessions import SessionRevoker
from ..tokens import AccessTokens
from .client_auth import authenticate_client_secret_basic, check_single_auth_method
from .clients import RegisteredClient, hash_secret
from .dpop import token_type
from .errors import shown
from .requests import ParsedRequest

log = logging.getLogger(__name__)

Response = tuple[int, Any, list[tuple[str, str]]]


class TokenGrant(Protocol):
    """What :class:`HopAuthorizationServer` uses of an Authlib token endpoint grant."""

    request: ParsedRequest

    def validate_token_request(self) -> None: ...

    def create_token_response(self) -> Response: ...


@dataclass(frozen=True, slots=True)
class ServerContext:
    """What grants and endpoints need, in one place."""

    settings: Settings
    policy: Policy
    db: sessionmaker[Session]
    tokens: AccessTokens
    sessions: SessionRevoker
    #: Checks DPoP proofs sent to the token endpoint (RFC 9449 §5); records no jti.
    dpop: DPoPProofValidator
    #: Where their jti are recorded, once the grant is validated (RFC 9449 §11.1).
    dpop_replay: ReplayCache
    clock: Callable[[], float] = time.time

    def now(self) -> int:
        return int(self.clock())

    def spend_once(
        self,
        claim: Callable[[Session, str, int], bool],
        digest: str,
        *,
        spent: bool,
        sid: str,
        reason: str,
    ) -> bool:
        """Claim a single-use credential (code, refresh token) with ``claim``; else revoke.

        Already ``spent``, or a lost race to claim it, is a second use: the login
        session ``sid`` is revoked (RFC 6749 §4.1.2, RFC 9700 §4.14.2) and False
        returned. Grants call it as they issue, after validation and after the
        token endpoint recorded the request's DPoP proof.
        """
        claimed = False
        if not spent:
            with transaction(self.db) as session:
                claimed = claim(session, digest, self.now())
        if not claimed:
            self.sessions.revoke(sid, reason)
        return claimed


class HopAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, context: ServerContext, clients: Mapping[str, RegisteredClient]) -> None:
        super().__init__(scopes_supported=context.policy.scopes_supported())
        self.context = context
        self._clients = dict(clients)
        # Authlib's parser lets undecodable credentials escape as a server error.
        self.register_client_auth_method("client_secret_basic", authenticate_client_secret_basic)

    def authenticate_client(self, request: Any, methods: Any, endpoint: str = "token") -> Any:
        check_single_auth_method(request)
        return super().authenticate_client(request, methods, endpoint)

    def validated_token_grant(self, request: ParsedRequest) -> TokenGrant:
        """A token request's grant, validated and not yet carried out (RFC 6749 §3.2).

        The client is authenticated and the grant checked: the code or refresh
        token is found good (read only: it is claimed by the grant when it
        issues), the client credentials request or the subject token checked.
        No token exists yet and nothing is spent. Between this and
        :meth:`issue_token_response` the web layer records the request's DPoP
        proof (RFC 9449 §11.1), so a failed grant records nothing and a refused
        proof spends nothing. Raises :class:`~authlib.oauth2.OAuth2Error`.
        """
        if not request.payload.data.get("grant_type"):
            # RFC 6749 §5.2: a missing parameter is invalid_request, not an unknown grant.
            raise InvalidRequestError("Missing 'grant_type' parameter.")
        grant: TokenGrant = self.get_token_grant(request)
        grant.validate_token_request()
        return grant

    def issue_token_response(self, grant: TokenGrant) -> Response:
        """The token response (RFC 6749 §5.1) of a validated grant, or its error (§5.2)."""
        try:
            return self.handle_response(*grant.create_token_response())
        except OAuth2Error as error:
            return self.handle_error_response(grant.request, error)  # type: ignore[no-any-return]

    def create_token_response(self, request: ParsedRequest) -> Response:
        """Authlib's, in the two steps above: validate, then issue."""
        try:
            grant = self.validated_token_grant(request)
        except OAuth2Error as error:
            return self.handle_error_response(request, error)  # type: ignore[no-any-return]
        return self.issue_token_response(grant)

    def get_authorization_grant(self, request: ParsedRequest) -> Any:
        if response_type := request.payload.response_type:
            # Authlib quotes an unknown type as the error description, where RFC 6749
            # §5.2 forbids most characters (its ValueError would be a 500). No grant
            # has a type with such characters, so the safe rendering changes no match.
            request.payload.data["response_type"] = shown(response_type)
        try:
            return super().get_authorization_grant(request)
        except UnsupportedResponseTypeError as error:
            if request.payload.response_type:
                raise
            # RFC 6749 §4.1.2.1: a missing parameter is invalid_request.
            raise InvalidRequestError(
                "Missing 'response_type' parameter.",
                state=request.payload.state,
                redirect_uri=error.redirect_uri,
            ) from None

    # Authlib hooks

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return self._clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: ParsedRequest) -> None:
        """Persist the refresh token (hashed); access tokens are stateless JWTs.

        RFC 9449 §5: a public client's refresh token is bound to the key of
        the DPoP proof it came with (a confidential client's is already bound
        to its credentials).
        """
        refresh = token.get("refresh_token")
        if not refresh:
            return
        if request.sid is None or request.user is None:
            raise RuntimeError("a refresh token needs a session and a user")
        now = self.context.now()
        with transaction(self.context.db) as session:
            session.add(
                RefreshToken(
                    token_sha256=hash_secret(refresh),
                    sid=request.sid,
                    client_id=request.client.client_id,
                    user_id=request.user.id,
                    # RFC 6749 §6: a rotated refresh token keeps the scope it replaced.
                    scope=request.extra.get("refresh_scope", token.get("scope", "")),
                    issued_at=now,
                    expires_at=now + self.context.settings.refresh_token_ttl,
                    used_at=None,
                    dpop_jkt=request.dpop_jkt if request.client.public else None,
                )
            )

    def create_oauth2_request(self, request: ParsedRequest) -> ParsedRequest:
        return request

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("no JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        return status, body, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    # Token minting shared by the user-facing grants

    def user_tokens(
        self,
        *,
        client: RegisteredClient,
        user: User,
        scope: str,
        sid: str,
        include_refresh_token: bool,
        jkt: str | None = None,
    ) -> dict[str, Any]:
        """A user token (aud = the login audience) and, optionally, a refresh token.

        With ``jkt`` (a DPoP proof came with the request) the access token is
        bound to that key (RFC 9449 §5).
        """
        login = client.policy.login
        if login is None:
            raise RuntimeError(f"client {client.client_id} has no login policy")
        issued = self.context.tokens.mint(
            subject=user.id,
            audience=login.audience,
            client_id=client.client_id,
            scopes=scope.split(),
            lifetime=self.context.settings.user_token_ttl,
            sid=sid,
            jkt=jkt,
        )
        token: dict[str, Any] = {
            "access_token": issued.access_token,
            "token_type": token_type(jkt),
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        }
        if include_refresh_token:
            token["refresh_token"] = secrets.token_urlsafe(32)
        return token
