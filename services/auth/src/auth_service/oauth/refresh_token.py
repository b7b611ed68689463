"""Refresh token grant (RFC 6749 §6) with rotation and reuse detection.

Every refresh spends the token and issues a new one in the same family (the
login session). Presenting a spent token means it was copied: the whole family
is revoked (RFC 9700 §4.14.2).

A DPoP-bound refresh token (a public client's, RFC 9449 §5) is only good with
a proof of its key; without one it is refused as invalid before it is spent,
so a thief holding only the token can neither use it nor burn the family.

Validating the request only reads the token; it is spent (atomically, once)
as the new tokens are issued. Between the two the token endpoint records the
request's DPoP proof (RFC 9449 §11.1, :mod:`.dpop`), so a request refused for
its proof leaves the token usable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, grants

from .. import repository
from ..db import transaction
from ..models import User
from .clients import RegisteredClient, hash_secret
from .server import HopAuthorizationServer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    token_sha256: str
    client_id: str
    user_id: str
    sid: str
    scope: str
    #: Already spent: a copy. The family is revoked once the request's proof is
    #: recorded, so a replayed request (token and proof) cannot burn it.
    spent: bool = False

    def get_scope(self) -> str:
        return self.scope

    def check_client(self, client: RegisteredClient) -> bool:
        return client.client_id == self.client_id


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: HopAuthorizationServer

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshRecord | None:
        """The token, if it can be used now or was spent; read only, no side effects.

        :meth:`create_token_response` spends it, or revokes the family
        (login session) of a spent one: a copy (RFC 9700 §4.14.2).
        """
        context = self.server.context
        now = context.now()
        digest = hash_secret(refresh_token)
        with transaction(context.db) as session:
            row = repository.refresh_token(session, digest)
            if row is None:
                return None
            if row.dpop_jkt is not None and row.dpop_jkt != self.request.dpop_jkt:
                log.info("DPoP-bound refresh token without its key's proof", extra={"sid": row.sid})
                return None
            record = RefreshRecord(
                token_sha256=digest,
                client_id=row.client_id,
                user_id=row.user_id,
                sid=row.sid,
                scope=row.scope,
                spent=row.used_at is not None,
            )
            usable = row.expires_at > now and repository.session_is_active(session, row.sid, now)
        return record if usable or record.spent else None

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Spend the token, then issue (RFC 6749 §6).

        A spent token, or a lost race to spend it, is a reuse: the family is
        revoked (RFC 9700 §4.14.2). Here, not in validation: this runs after
        the token endpoint recorded the request's DPoP proof, so replaying a
        whole captured request is refused for its proof and revokes nothing.
        """
        record: RefreshRecord = self.request.refresh_token
        if not self.server.context.spend_once(
            repository.claim_refresh_token,
            record.token_sha256,
            spent=record.spent,
            sid=record.sid,
            reason="refresh_token_reuse",
        ):
            raise InvalidGrantError()
        return super().create_token_response()  # type: ignore[no-any-return]

    def _validate_token_scope(self, token: RefreshRecord) -> None:
        """Authlib's check (RFC 6749 §6: no scope beyond the original), except for a
        spent token: refusing it here for its scope would skip the revocation."""
        if not token.spent:
            super()._validate_token_scope(token)

    def authenticate_user(self, refresh_token: RefreshRecord) -> User | None:
        with transaction(self.server.context.db) as session:
            return repository.user_by_id(session, refresh_token.user_id)

    def revoke_old_credential(self, refresh_token: RefreshRecord) -> None:
        # Nothing to do: the token was marked spent atomically when it was claimed.
        return None

    def generate_token(
        self,
        user: User | None = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        record: RefreshRecord = self.request.refresh_token
        assert user is not None
        self.request.sid = record.sid
        self.request.extra["refresh_scope"] = record.scope
        return self.server.user_tokens(
            client=self.request.client,
            user=user,
            scope=scope or record.scope,
            sid=record.sid,
            include_refresh_token=include_refresh_token,
            jkt=self.request.dpop_jkt,
        )
