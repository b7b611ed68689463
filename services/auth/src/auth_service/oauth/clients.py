"""Registered clients: credentials from the database joined with the policy."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import ClientMixin

from ..policy import ClientPolicy

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
_GRANT_NAMES = {TOKEN_EXCHANGE: "token_exchange"}
CONFIDENTIAL_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class RegisteredClient(ClientMixin):  # type: ignore[misc]
    policy: ClientPolicy
    secret_sha256: str | None

    @property
    def client_id(self) -> str:
        return self.policy.client_id

    @property
    def public(self) -> bool:
        return self.policy.public

    def get_client_id(self) -> str:
        return self.policy.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.policy.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        """Scopes a login may ask for; narrowed to the user's roles when the code is made."""
        login = self.policy.login
        if login is None:
            return ""
        possible = login.scopes_for(frozenset(login.role_scopes))
        if not scope:
            return " ".join(sorted(possible))
        return " ".join(sorted(set(scope.split()) & possible))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string match (RFC 9700 §4.1.1): no prefixes, no patterns.
        return redirect_uri in self.policy.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_sha256 is None:
            return False
        return hmac.compare_digest(hash_secret(client_secret), self.secret_sha256)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.policy.public:
            return method == "none"
        return method in CONFIDENTIAL_AUTH_METHODS and self.secret_sha256 is not None

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.policy.grants

    def check_grant_type(self, grant_type: str) -> bool:
        return _GRANT_NAMES.get(grant_type, grant_type) in self.policy.grants
