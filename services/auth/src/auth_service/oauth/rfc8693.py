"""OAuth 2.0 Token Exchange (RFC 8693) as an Authlib extension grant.

Authlib ships no RFC 8693 grant; this one implements the token endpoint side
for impersonation and delegation semantics (§1.1) with access tokens only:

* §2.1   request parameters, with client authentication required;
* §2.2.1 the successful response (``issued_token_type``, ``scope``);
* §2.2.2 errors: ``invalid_request`` for a bad subject or actor token,
  ``invalid_target`` for an audience this client may not reach;
* §4.1   the ``act`` claim: the asking client nested over earlier actors;
* §4.4   the ``may_act`` claim of the subject token is honoured.

hopshop's rules on top (the policy file holds the per-client maxima):

* only confidential clients may exchange, and only tokens sent to them
  (the asking client must be in the subject token's ``aud``);
* exactly one target audience per token;
* issued scope = requested ∩ policy maximum, each scope only when the subject
  token holds what it derives from (by default: itself, so requested ∩
  subject's ∩ policy); asking for more is ``invalid_scope``, never silently
  narrowed or widened;
* the new token lives at most the service-token lifetime and never beyond
  the subject (or actor) token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import (
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import BaseGrant, TokenEndpointMixin
from hopkit.logs import annotate

from ..tokens import TokenVerificationError, act_chain, audiences, summary
from .clients import TOKEN_EXCHANGE, RegisteredClient
from .errors import InvalidTargetError
from .params import requested_scopes, single
from .server import HopAuthorizationServer

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@dataclass(frozen=True, slots=True)
class ExchangeParameters:
    subject_token: str = field(repr=False)
    audience: str
    actor_token: str | None = field(repr=False)


class TokenExchangeGrant(BaseGrant, TokenEndpointMixin):  # type: ignore[misc]
    GRANT_TYPE = TOKEN_EXCHANGE
    # RFC 8693 §2.1: client authentication per RFC 6749 §2.3; public clients cannot exchange.
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    server: HopAuthorizationServer

    def validate_token_request(self) -> None:
        client: RegisteredClient = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use token exchange.")
        self.request.client = client

        params = self._parameters()
        subject = self._verified(params.subject_token, "subject_token")
        if client.client_id not in audiences(subject):
            raise InvalidRequestError(
                "The subject token was not issued to this client: "
                "a service may only exchange tokens sent to it."
            )
        actor = None
        if params.actor_token is not None:
            actor = self._verified(params.actor_token, "actor_token")
            self._check_delegation(client, params.audience, actor)
        self._check_may_act(subject, actor, client)
        scopes = self._scopes(client, params.audience, subject)
        act = self._act_claim(client, subject, actor)
        depth = len(act_chain(act))
        if depth > self.server.context.settings.max_actor_chain:
            raise InvalidRequestError(f"Delegation chain too long ({depth} actors).")

        self.request.extra.update(
            subject=subject, actor=actor, audience=params.audience, scopes=scopes, act=act
        )

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        request = self.request
        client: RegisteredClient = request.client
        subject: Mapping[str, Any] = request.extra["subject"]
        actor: Mapping[str, Any] | None = request.extra["actor"]
        not_after = int(subject["exp"])
        if actor is not None:
            not_after = min(not_after, int(actor["exp"]))
        issued = self.server.context.tokens.mint(
            subject=subject["sub"],
            audience=request.extra["audience"],
            client_id=client.client_id,
            scopes=request.extra["scopes"],
            lifetime=self.server.context.settings.service_token_ttl,
            not_after=not_after,
            sid=subject.get("sid"),
            act=request.extra["act"],
        )
        annotate(
            event="token_exchanged",
            subject_token=summary(subject),
            issued={"jti": issued.jti, "aud": request.extra["audience"], "scope": issued.scope},
        )
        body = {
            "access_token": issued.access_token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            # RFC 8693 §2.2.1: an access token usable as a bearer token.
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        }
        return 200, body, self.TOKEN_RESPONSE_HEADER

    def _parameters(self) -> ExchangeParameters:
        """§2.1 request parameters, access tokens only, exactly one audience."""
        request = self.request
        subject_token = single(request, "subject_token", required=True)
        if single(request, "subject_token_type", required=True) != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError(f"'subject_token_type' must be {ACCESS_TOKEN_TYPE}.")
        if single(request, "requested_token_type") not in (None, ACCESS_TOKEN_TYPE):
            raise InvalidRequestError(f"Only {ACCESS_TOKEN_TYPE} can be issued.")
        if request.payload.datalist.get("resource"):
            raise InvalidTargetError("Use 'audience' with a service id; 'resource' is unsupported.")
        audience_values = request.payload.datalist.get("audience", [])
        if len(audience_values) != 1 or not audience_values[0]:
            raise InvalidTargetError("Exactly one 'audience' is required: one token per service.")
        actor_token = single(request, "actor_token")
        actor_token_type = single(request, "actor_token_type")
        if actor_token is None and actor_token_type is not None:
            raise InvalidRequestError("'actor_token_type' given without 'actor_token'.")
        if actor_token is not None and actor_token_type != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError(f"'actor_token_type' must be {ACCESS_TOKEN_TYPE}.")
        assert subject_token is not None  # required=True
        return ExchangeParameters(subject_token, audience_values[0], actor_token)

    def _scopes(
        self, client: RegisteredClient, audience: str, subject: Mapping[str, Any]
    ) -> frozenset[str]:
        """Requested ∩ what the policy lets this subject's scopes become at ``audience``."""
        subject_scopes = frozenset(str(subject.get("scope", "")).split())
        grantable = client.policy.exchangeable(audience, subject_scopes)
        if grantable is None:
            raise InvalidTargetError(f"This client may not exchange for audience '{audience}'.")
        wanted = requested_scopes(self.request)
        if wanted is None:
            wanted = grantable
        if not wanted:
            raise InvalidScopeError("No scope can be granted for this audience.")
        if excess := wanted - grantable:
            raise InvalidScopeError(
                "Scope(s) beyond the subject token or this client's policy: "
                + " ".join(sorted(excess))
            )
        return wanted

    def _verified(self, token: str, name: str) -> dict[str, Any]:
        """Claims of a valid, unrevoked access token from this issuer (§2.2.2)."""
        try:
            claims = self.server.context.tokens.verify(token)
        except TokenVerificationError as exc:
            raise InvalidRequestError(f"Invalid '{name}': {exc}") from None
        sid = claims.get("sid")
        if sid is not None and not self.server.context.sessions.is_active(str(sid)):
            raise InvalidRequestError(f"Invalid '{name}': its session was revoked.")
        return claims

    def _check_delegation(
        self, client: RegisteredClient, audience: str, actor: Mapping[str, Any]
    ) -> None:
        needed = client.policy.delegation.get(audience)
        if needed is None:
            raise InvalidRequestError(
                f"This client may not present an actor token for audience '{audience}'."
            )
        if client.client_id not in audiences(actor):
            raise InvalidRequestError("The actor token was not issued to this client.")
        if "act" in actor:
            raise InvalidRequestError("The actor token must not itself be delegated.")
        if not needed & frozenset(str(actor.get("scope", "")).split()):
            raise InvalidRequestError(
                "The actor lacks the scope this delegation requires: " + " ".join(sorted(needed))
            )

    @staticmethod
    def _check_may_act(
        subject: Mapping[str, Any], actor: Mapping[str, Any] | None, client: RegisteredClient
    ) -> None:
        """RFC 8693 §4.4: if the subject names who may act for it, hold to that."""
        may_act = subject.get("may_act")
        if may_act is None:
            return
        if not isinstance(may_act, Mapping):
            raise InvalidRequestError("Malformed 'may_act' claim in the subject token.")
        acting = actor if actor is not None else {"sub": client.client_id}
        for claim, allowed in may_act.items():
            if claim in ("sub", "client_id", "iss") and acting.get(claim) != allowed:
                raise InvalidRequestError(
                    "The subject token's 'may_act' does not allow this actor."
                )

    @staticmethod
    def _act_claim(
        client: RegisteredClient, subject: Mapping[str, Any], actor: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """§4.1: the asking client is the current actor; earlier actors nest beneath it.

        The subject token's own chain is always kept, so a re-exchange can never
        launder away who acted before.
        """
        prior: dict[str, Any] | None = subject.get("act")
        if actor is not None:
            delegate: dict[str, Any] = {"sub": actor["sub"]}
            if prior is not None:
                delegate["act"] = prior
            prior = delegate
        act: dict[str, Any] = {"sub": client.client_id}
        if prior is not None:
            act["act"] = prior
        return act
