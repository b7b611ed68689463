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
  the subject (or actor) token;
* an exchange carrying an actor token needs a ``delegation`` entry in the
  policy for that audience, and its token carries at most that entry's scopes.

Extension: ``requested_subject`` (the name Keycloak gives it). §2.1 makes
``subject_token`` REQUIRED, but for support access the gateway holds no token
of the customer's: it has only the staff member's. So a client may instead
send ``actor_token`` plus ``requested_subject`` = a user id, and no subject
token. The issued token has ``sub`` = that user and ``act`` = the client over
the actor, as a delegation would. Only where the policy has a delegation
entry for the audience, only for an actor token holding one of its
``actor_scopes``, only for a user holding one of its ``subject_roles`` (never
the actor), and only its ``scopes``. The token keeps the actor's ``sid`` and
never outlives the actor token, so ending the staff member's login ends it.

DPoP (RFC 9449 §5): a DPoP-bound subject (or actor) token may be exchanged
without a proof of its key. The asking service authenticates as a client and
must be in the subject token's ``aud``; a token bound to the previous hop's
key reached it legitimately, but that key stays with the previous hop, so no
proof could be asked of it. A thief holding only the token cannot exchange it
(no client secret). The NEW token is bound to the asking client's own key
when its request carries a proof (``cnf.jkt`` of that proof, ``token_type:
DPoP``), else it is a bearer token: the next resource server decides whether
it insists on DPoP.
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

from .. import repository
from ..db import transaction
from ..policy import DelegationPolicy
from ..tokens import TokenVerificationError, act_chain, audiences, summary
from .clients import TOKEN_EXCHANGE, RegisteredClient
from .dpop import token_type
from .errors import InvalidTargetError, shown
from .params import requested_scopes, single
from .server import HopAuthorizationServer

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
#: User ids are at most this long (models.User.id); a longer one names nobody.
MAX_USER_ID = 64
#: The ``may_act`` members (RFC 8693 §4.4) compared with the acting party.
_MAY_ACT_CLAIMS = frozenset({"sub", "client_id", "iss"})


@dataclass(frozen=True, slots=True)
class ExchangeParameters:
    """Exactly one of ``subject_token`` and ``requested_subject`` is set."""

    subject_token: str | None = field(repr=False)
    audience: str
    actor_token: str | None = field(repr=False)
    requested_subject: str | None = None


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
        if params.requested_subject is not None:
            self._validate_requested_subject(client, params)
            return
        assert params.subject_token is not None  # _parameters: one of the two
        subject = self._verified(params.subject_token, "subject_token")
        if client.client_id not in audiences(subject):
            raise InvalidRequestError(
                "The subject token was not issued to this client: "
                "a service may only exchange tokens sent to it."
            )
        actor = None
        delegation = None
        if params.actor_token is not None:
            actor = self._verified(params.actor_token, "actor_token")
            delegation = self._check_delegation(client, params.audience, actor)
        self._check_may_act(subject, actor, client)
        subject_scopes = frozenset(str(subject.get("scope", "")).split())
        grantable = client.policy.exchangeable(params.audience, subject_scopes)
        if grantable is None:
            raise InvalidTargetError(
                f"This client may not exchange for audience '{shown(params.audience)}'."
            )
        if delegation is not None:
            grantable &= delegation.scopes
        scopes = self._scopes(grantable)
        act = self._act_claim(client, subject, actor)
        self._check_depth(act)

        not_after = int(subject["exp"])
        audit: dict[str, Any] = {"event": "token_exchanged", "subject_token": summary(subject)}
        if actor is not None:
            not_after = min(not_after, int(actor["exp"]))
            audit["actor_token"] = summary(actor)
        self.request.extra.update(
            sub=subject["sub"],
            sid=subject.get("sid"),
            not_after=not_after,
            audience=params.audience,
            scopes=scopes,
            act=act,
            audit=audit,
        )

    def _check_depth(self, act: dict[str, Any]) -> None:
        """At most ``max_actor_chain`` actors in a token, whichever way it was asked for."""
        depth = len(act_chain(act))
        if depth > self.server.context.settings.max_actor_chain:
            raise InvalidRequestError(f"Delegation chain too long ({depth} actors).")

    def _validate_requested_subject(
        self, client: RegisteredClient, params: ExchangeParameters
    ) -> None:
        """The ``requested_subject`` extension (module docstring): an actor names the subject.

        The subject is checked last, so only a client holding a fitting actor
        token learns anything about user ids, and then only "no".
        """
        assert params.actor_token is not None and params.requested_subject is not None
        actor = self._verified(params.actor_token, "actor_token")
        delegation = self._check_delegation(client, params.audience, actor)
        scopes = self._scopes(delegation.scopes)
        self._check_requested_subject(delegation, params.requested_subject, actor)
        act = self._act_claim(client, {}, actor)
        self._check_depth(act)
        self.request.extra.update(
            sub=params.requested_subject,
            # The actor's login: revoking it (sign-out, a stolen laptop) ends this token too.
            sid=actor.get("sid"),
            not_after=int(actor["exp"]),
            audience=params.audience,
            scopes=scopes,
            act=act,
            audit={
                "event": "token_delegated",
                "requested_subject": params.requested_subject,
                "actor_token": summary(actor),
            },
        )

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        request = self.request
        client: RegisteredClient = request.client
        issued = self.server.context.tokens.mint(
            subject=request.extra["sub"],
            audience=request.extra["audience"],
            client_id=client.client_id,
            scopes=request.extra["scopes"],
            lifetime=self.server.context.settings.service_token_ttl,
            not_after=request.extra["not_after"],
            sid=request.extra["sid"],
            act=request.extra["act"],
            jkt=request.dpop_jkt,
        )
        annotate(
            **request.extra["audit"],
            issued={"jti": issued.jti, "aud": request.extra["audience"], "scope": issued.scope},
        )
        body = {
            "access_token": issued.access_token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            # RFC 8693 §2.2.1 / RFC 9449 §5: Bearer, or DPoP when bound to a proof key.
            "token_type": token_type(request.dpop_jkt),
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        }
        return 200, body, self.TOKEN_RESPONSE_HEADER

    def _parameters(self) -> ExchangeParameters:
        """§2.1 request parameters (or ``requested_subject``), access tokens only, one audience."""
        request = self.request
        requested_subject = single(request, "requested_subject")
        if requested_subject is None:
            subject_token = single(request, "subject_token", required=True)
            if single(request, "subject_token_type", required=True) != ACCESS_TOKEN_TYPE:
                raise InvalidRequestError(f"'subject_token_type' must be {ACCESS_TOKEN_TYPE}.")
        else:
            subject_token = None
            if single(request, "subject_token") or single(request, "subject_token_type"):
                raise InvalidRequestError(
                    "Send either 'subject_token' or 'requested_subject', not both."
                )
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
        if requested_subject is not None and actor_token is None:
            raise InvalidRequestError(
                "'requested_subject' needs an 'actor_token': only an actor may name a subject."
            )
        return ExchangeParameters(subject_token, audience_values[0], actor_token, requested_subject)

    def _scopes(self, grantable: frozenset[str]) -> frozenset[str]:
        """The requested scopes (all of ``grantable`` if none), never beyond ``grantable``."""
        wanted = requested_scopes(self.request)
        if wanted is None:
            wanted = grantable
        if not wanted:
            raise InvalidScopeError("No scope can be granted for this audience.")
        if excess := wanted - grantable:
            raise InvalidScopeError(
                "Scope(s) beyond the subject token or this client's policy: "
                + shown(" ".join(sorted(excess)))
            )
        return wanted

    def _verified(self, token: str, name: str) -> dict[str, Any]:
        """Claims of a valid, unrevoked access token from this issuer (§2.2.2)."""
        try:
            claims = self.server.context.tokens.verify(token)
        except TokenVerificationError as exc:
            raise InvalidRequestError(f"Invalid '{name}': {exc}") from None
        if claims["exp"] <= self.server.context.now():
            # verify() allows clock-skew leeway past exp; a token minted from this
            # one would already be dead (exp = not_after, expires_in <= 0).
            raise InvalidRequestError(f"Invalid '{name}': expired")
        sid = claims.get("sid")
        if sid is not None and not self.server.context.sessions.is_active(str(sid)):
            raise InvalidRequestError(f"Invalid '{name}': its session was revoked.")
        return claims

    def _check_delegation(
        self, client: RegisteredClient, audience: str, actor: Mapping[str, Any]
    ) -> DelegationPolicy:
        """§1.1 delegation: this client may present this actor token for ``audience``."""
        delegation = client.policy.delegation.get(audience)
        if delegation is None:
            raise InvalidRequestError(
                f"This client may not present an actor token for audience '{shown(audience)}'."
            )
        if client.client_id not in audiences(actor):
            raise InvalidRequestError("The actor token was not issued to this client.")
        if "act" in actor:
            raise InvalidRequestError("The actor token must not itself be delegated.")
        needed = delegation.actor_scopes
        if not needed & frozenset(str(actor.get("scope", "")).split()):
            raise InvalidRequestError(
                "The actor lacks the scope this delegation requires: " + " ".join(sorted(needed))
            )
        return delegation

    def _check_requested_subject(
        self, delegation: DelegationPolicy, user_id: str, actor: Mapping[str, Any]
    ) -> None:
        """An existing user holding a role the policy lets actors act for, and not the actor.

        One answer for every refusal: the endpoint does not say which ids exist.
        """
        roles: frozenset[str] = frozenset()
        if len(user_id) <= MAX_USER_ID:
            with transaction(self.server.context.db) as session:
                user = repository.user_by_id(session, user_id)
                if user is not None:
                    roles = frozenset(user.roles.split())
        if user_id == actor.get("sub") or not roles & delegation.subject_roles:
            raise InvalidRequestError("The actor may not act for the requested subject.")

    @staticmethod
    def _check_may_act(
        subject: Mapping[str, Any], actor: Mapping[str, Any] | None, client: RegisteredClient
    ) -> None:
        """RFC 8693 §4.4: if the subject names who may act for it, hold to that.

        Fails closed: a ``may_act`` naming nobody, or identifying the actor by a
        claim we do not compare, allows no one rather than everyone.
        """
        may_act = subject.get("may_act")
        if may_act is None:
            return
        if not isinstance(may_act, Mapping):
            raise InvalidRequestError("Malformed 'may_act' claim in the subject token.")
        acting = actor if actor is not None else {"sub": client.client_id}
        unchecked = not may_act or not set(may_act) <= _MAY_ACT_CLAIMS
        if unchecked or any(acting.get(claim) != allowed for claim, allowed in may_act.items()):
            raise InvalidRequestError("The subject token's 'may_act' does not allow this actor.")

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
