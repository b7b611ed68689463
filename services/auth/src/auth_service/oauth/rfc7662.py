"""Token introspection (RFC 7662) for confidential clients.

A client learns about a token only if the token was issued to it or is meant
for it (§4: the server decides which resources may see which tokens);
otherwise, like for any unknown or dead token, the answer is ``active: false``.
A DPoP-bound token is reported with its ``cnf`` and ``token_type: DPoP``
(RFC 9449 §6.2), so the resource server knows to ask for the proof.
"""

from __future__ import annotations

from typing import Any

from authlib.consts import default_json_headers
from authlib.oauth2 import rfc7662

from .. import repository
from ..db import transaction
from ..tokens import TokenVerificationError, audiences
from .clients import RegisteredClient, hash_secret
from .dpop import confirmation, token_type
from .params import check_token_params
from .server import HopAuthorizationServer

_ACCESS_CLAIMS = (
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "sid",
    "act",
    "cnf",
)
INACTIVE: dict[str, Any] = {"active": False}


class IntrospectionEndpoint(rfc7662.IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    server: HopAuthorizationServer

    def check_params(self, request: Any, client: RegisteredClient) -> None:
        check_token_params(request, self.SUPPORTED_TOKEN_TYPES)

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], Any]:
        client: RegisteredClient = self.authenticate_endpoint_client(request)
        self.check_params(request, client)
        token = request.form["token"]
        hint = request.form.get("token_type_hint")
        body = None
        if hint != "refresh_token":
            body = self._access_token(token, client)
        if body is None:
            body = self._refresh_token(token, client)
        return 200, body or INACTIVE, default_json_headers

    def _access_token(self, token: str, client: RegisteredClient) -> dict[str, Any] | None:
        context = self.server.context
        try:
            claims = context.tokens.verify(token)
        except TokenVerificationError:
            return None
        if claims["exp"] <= context.now():
            # verify() allows clock-skew leeway past exp; RFC 7662 §2.2: expired is not active.
            return INACTIVE
        if claims.get("client_id") != client.client_id and client.client_id not in audiences(
            claims
        ):
            return INACTIVE
        sid = claims.get("sid")
        if sid is not None and not context.sessions.is_active(str(sid)):
            return INACTIVE
        body = {name: claims[name] for name in _ACCESS_CLAIMS if name in claims}
        return {"active": True, "token_type": token_type(confirmation(claims)), **body}

    def _refresh_token(self, token: str, client: RegisteredClient) -> dict[str, Any]:
        context = self.server.context
        now = context.now()
        with transaction(context.db) as session:
            row = repository.refresh_token(session, hash_secret(token))
            if (
                row is None
                or row.client_id != client.client_id
                or row.used_at is not None
                or row.expires_at <= now
                or not repository.session_is_active(session, row.sid, now)
            ):
                return INACTIVE
            return {
                "active": True,
                "token_type": "refresh_token",
                "client_id": row.client_id,
                "sub": row.user_id,
                "scope": row.scope,
                "exp": row.expires_at,
                "iat": row.issued_at,
                "sid": row.sid,
                "iss": context.tokens.issuer,
            }
