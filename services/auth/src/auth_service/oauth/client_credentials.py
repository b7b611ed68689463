"""Client credentials grant (RFC 6749 §4.4): a service acting as itself.

The token has ``sub = client_id`` and no user claims. Its audience comes from
the ``audience`` parameter (as in RFC 8693 §2.1); a client registered for one
audience may omit it. With a DPoP proof the token is bound to its key
(RFC 9449 §5, see :mod:`.dpop`).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, InvalidScopeError, grants

from .clients import RegisteredClient
from .dpop import token_type
from .errors import InvalidTargetError, shown
from .params import requested_scopes, single
from .server import HopAuthorizationServer


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    server: HopAuthorizationServer

    def validate_token_request(self) -> None:
        super().validate_token_request()
        client: RegisteredClient = self.request.client
        table = client.policy.client_credentials
        if self.request.payload.datalist.get("resource"):
            raise InvalidTargetError("Use 'audience' with a service id; 'resource' is unsupported.")
        audience = single(self.request, "audience")
        if audience is None:
            if len(table) != 1:
                raise InvalidRequestError("Missing 'audience' parameter.")
            (audience,) = table
        allowed = table.get(audience)
        if allowed is None:
            raise InvalidTargetError(
                f"Client may not obtain tokens for audience '{shown(audience)}'."
            )
        wanted = requested_scopes(self.request)
        if wanted is not None and not wanted <= allowed:
            raise InvalidScopeError(
                "Scope(s) not registered for this client: "
                + shown(" ".join(sorted(wanted - allowed)))
            )
        self.request.extra["audience"] = audience
        self.request.extra["scopes"] = wanted if wanted is not None else allowed

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: RegisteredClient = self.request.client
        issued = self.server.context.tokens.mint(
            subject=client.client_id,
            audience=self.request.extra["audience"],
            client_id=client.client_id,
            scopes=self.request.extra["scopes"],
            lifetime=self.server.context.settings.service_token_ttl,
            jkt=self.request.dpop_jkt,
        )
        body = {
            "access_token": issued.access_token,
            "token_type": token_type(self.request.dpop_jkt),
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        }
        return 200, body, self.TOKEN_RESPONSE_HEADER
