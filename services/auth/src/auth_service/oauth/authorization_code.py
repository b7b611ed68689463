"""Authorization code grant (RFC 6749 §4.1) with PKCE S256 only (RFC 7636).

A code works once. A second use is refused and the login session made from
it is revoked, which kills every token issued from the code (RFC 6749 §4.1.2,
RFC 9700 §4.5).

Validating the request only reads the code; it is claimed (atomically, once)
as the tokens are issued. Between the two the token endpoint records the
request's DPoP proof (RFC 9449 §11.1, :mod:`.dpop`), so a request refused for
its proof, or for a wrong ``code_verifier``, leaves the code for its client.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, grants
from authlib.oauth2.rfc7636 import CodeChallenge

from .. import repository
from ..db import transaction
from ..models import AuthorizationCode, LoginSession, User
from .clients import RegisteredClient, hash_secret
from .errors import shown
from .server import HopAuthorizationServer


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """An authorization code, as Authlib's AuthorizationCodeMixin wants it."""

    code_sha256: str
    client_id: str
    user_id: str
    sid: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    #: Already redeemed: a replay. The session is revoked once the request's
    #: DPoP proof (if any) is recorded, in the grant's create_token_response.
    used: bool = False

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only, required for every client (RFC 9700 §2.1.1)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE (S256) is required.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: CodeRecord) -> str | None:
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: CodeRecord) -> str | None:
        return authorization_code.code_challenge_method


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    server: HopAuthorizationServer

    @staticmethod
    def validate_authorization_redirect_uri(request: Any, client: RegisteredClient) -> Any:
        """RFC 6749 §3.1.2.3: a registered redirect URI only.

        Authlib quotes an unregistered URI in the error description, where RFC 6749
        §5.2 forbids most characters (its ValueError would be a 500): refuse it here,
        quoted safely.
        """
        redirect_uri = request.payload.redirect_uri
        if redirect_uri and not client.check_redirect_uri(redirect_uri):
            raise InvalidRequestError(
                f"Redirect URI {shown(redirect_uri)} is not registered for this client."
            )
        return grants.AuthorizationCodeGrant.validate_authorization_redirect_uri(request, client)

    def save_authorization_code(self, code: str, request: Any) -> None:
        client: RegisteredClient = request.client
        user: User = request.user
        assert client.policy.login is not None  # only clients with a login policy get here
        allowed = client.policy.login.scopes_for(frozenset(user.roles.split()))
        scope = " ".join(sorted(set(request.scope.split()) & allowed))
        context = self.server.context
        now = context.now()
        sid = secrets.token_urlsafe(16)
        with transaction(context.db) as session:
            session.add(
                LoginSession(
                    sid=sid,
                    user_id=user.id,
                    client_id=client.client_id,
                    created_at=now,
                    expires_at=now + context.settings.refresh_token_ttl,
                )
            )
            session.add(
                AuthorizationCode(
                    code_sha256=hash_secret(code),
                    client_id=client.client_id,
                    user_id=user.id,
                    sid=sid,
                    # RFC 6749 §4.1.3: the token request must repeat it only if it was sent here.
                    redirect_uri=request.payload.redirect_uri or "",
                    scope=scope,
                    code_challenge=request.payload.data.get("code_challenge"),
                    code_challenge_method=request.payload.data.get("code_challenge_method"),
                    expires_at=now + context.settings.authorization_code_ttl,
                )
            )

    def query_authorization_code(self, code: str, client: RegisteredClient) -> CodeRecord | None:
        """The code, if this client may redeem it now or already did; read only.

        :meth:`create_token_response` claims it, or revokes the login session
        of a code already used (a replay).
        """
        context = self.server.context
        now = context.now()
        with transaction(context.db) as session:
            row = repository.authorization_code(session, hash_secret(code))
            if row is None or row.client_id != client.client_id:
                return None
            record = CodeRecord(
                code_sha256=row.code_sha256,
                client_id=row.client_id,
                user_id=row.user_id,
                sid=row.sid,
                redirect_uri=row.redirect_uri,
                scope=row.scope,
                code_challenge=row.code_challenge,
                code_challenge_method=row.code_challenge_method,
                used=row.used_at is not None,
            )
            expired = row.expires_at <= now
        return record if record.used or not expired else None

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Claim the code, then issue (RFC 6749 §4.1.4).

        A code already used, or a lost race to claim it, is a replay: the login
        session is revoked (§4.1.2). Here, after validation (PKCE included) and
        after the token endpoint recorded the request's DPoP proof, so a refused
        request has no side effects.
        """
        code: CodeRecord = self.request.authorization_code
        if not self.server.context.spend_once(
            repository.claim_authorization_code,
            code.code_sha256,
            spent=code.used,
            sid=code.sid,
            reason="authorization_code_replay",
        ):
            raise InvalidGrantError("Invalid 'code' in request.")
        return super().create_token_response()  # type: ignore[no-any-return]

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        # Nothing to do: the code was marked used atomically when it was claimed.
        return None

    def authenticate_user(self, authorization_code: CodeRecord) -> User | None:
        with transaction(self.server.context.db) as session:
            return repository.user_by_id(session, authorization_code.user_id)

    def generate_token(
        self,
        user: User | None = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        code: CodeRecord = self.request.authorization_code
        assert user is not None
        self.request.sid = code.sid
        return self.server.user_tokens(
            client=self.request.client,
            user=user,
            scope=scope or "",
            sid=code.sid,
            include_refresh_token=include_refresh_token,
            jkt=self.request.dpop_jkt,
        )
