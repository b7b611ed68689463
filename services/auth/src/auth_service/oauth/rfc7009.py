"""Token revocation (RFC 7009).

Revoking a refresh token or a user access token revokes its login session
(``sid``): the refresh family and every access token carrying the sid, the
exchanged descendants included (§2.1 allows revoking related tokens).
Unknown tokens get 200, as §2.2 requires. Client-credentials tokens carry no
session and simply expire (five minutes at most).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.oauth2 import rfc7009

from .. import repository
from ..db import transaction
from ..tokens import TokenVerificationError
from .clients import RegisteredClient, hash_secret
from .params import check_token_params
from .server import HopAuthorizationServer


@dataclass(frozen=True, slots=True)
class RevocableToken:
    client_id: str
    sid: str | None

    def check_client(self, client: RegisteredClient) -> bool:
        return client.client_id == self.client_id


class RevocationEndpoint(rfc7009.RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    server: HopAuthorizationServer

    def check_params(self, request: Any, client: RegisteredClient) -> None:
        check_token_params(request, self.SUPPORTED_TOKEN_TYPES)

    def query_token(self, token_string: str, token_type_hint: str | None) -> RevocableToken | None:
        found = None
        if token_type_hint != "refresh_token":
            found = self._access_token(token_string)
        if found is None:
            found = self._refresh_token(token_string)
        if found is None and token_type_hint == "refresh_token":
            found = self._access_token(token_string)
        return found

    def revoke_token(self, token: RevocableToken, request: Any) -> None:
        if token.sid is not None:
            self.server.context.sessions.revoke(token.sid, "revoked_by_client")

    def _access_token(self, token: str) -> RevocableToken | None:
        try:
            claims = self.server.context.tokens.verify(token)
        except TokenVerificationError:
            return None
        sid = claims.get("sid")
        return RevocableToken(client_id=claims["client_id"], sid=str(sid) if sid else None)

    def _refresh_token(self, token: str) -> RevocableToken | None:
        with transaction(self.server.context.db) as session:
            row = repository.refresh_token(session, hash_secret(token))
            if row is None:
                return None
            return RevocableToken(client_id=row.client_id, sid=row.sid)
