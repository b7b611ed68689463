"""Where the token for each downstream hop comes from.

``exchange`` (the default): the user's token is exchanged at the issuer for one
made for the next service alone (RFC 8693: ``aud`` = that service, the
smallest scope the call needs, ``act`` = gateway). One
:class:`~hopauth.TokenExchanger` per process caches them per (user token,
audience, scopes); its ``stats`` are the exchange-cache hit rate. Support
staff looking at a customer's order get a delegated token instead
(:meth:`HopTokens.for_customer`: ``sub`` = the customer, carol in ``act``).

``forward`` (the vulnerable teaching mode): the user's own token goes
downstream unchanged, so every service behind the gateway holds a token that
would also open every other one. Calls with no user behind them (broadcasts)
use the gateway's client-credentials token in both modes.

Each token comes back as a :class:`HopToken`, which knows how it must be
presented: with DPoP on (the default in exchange mode) every token the gateway
obtains is bound to its key and goes out as ``Authorization: DPoP`` with a
fresh proof for that one request (RFC 9449 §7.1); a forwarded user token is a
plain bearer token (RFC 6750 §2.1).
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable

import httpx
from hopauth import ClientCredentials, DPoPKey, HopAuthError, TokenExchanger, TokenRequestError
from hopauth.rfc9449 import authorize_dpop
from hopkit.problems import Problem
from hopkit.settings import Propagation

from .config import AUDIENCE
from .problems import PROBLEMS, HeaderProblem, bad_gateway, timed_out, unavailable

log = logging.getLogger(__name__)

#: Token endpoint errors that mean "this subject token is no good (any more)":
#: it expired or its session was revoked since we validated it.
_SUBJECT_REFUSED = frozenset({"invalid_request", "invalid_grant"})
#: Errors that mean "this user may not have that token": a policy refusal.
_POLICY_REFUSED = frozenset({"invalid_scope", "invalid_target"})


class HopToken(httpx.Auth):
    """A token for one downstream call, as ``httpx.Auth``: it sets the request's credentials.

    With ``dpop_key`` (the key the token is bound to, RFC 9449 §6) each request
    gets ``Authorization: DPoP <token>`` and a proof naming its method, URL and
    the token's hash (§7.1), so the token alone is no use to whoever captures
    it. Without, ``Authorization: Bearer <token>`` (RFC 6750 §2.1). The
    services behind the gateway issue no DPoP nonces (§9), so there is no retry.
    """

    def __init__(self, value: str, dpop_key: DPoPKey | None) -> None:
        self.value = value
        self.dpop_key = dpop_key

    def __repr__(self) -> str:
        return f"HopToken({'DPoP' if self.dpop_key is not None else 'Bearer'})"  # never the token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.dpop_key is None:
            request.headers["Authorization"] = f"Bearer {self.value}"
        else:
            authorize_dpop(request, self.value, self.dpop_key)
        yield request


class HopTokens:
    """Tokens for downstream calls, by the propagation mode; failures become problems."""

    def __init__(
        self,
        mode: Propagation,
        exchanger: TokenExchanger,
        broadcast_credentials: ClientCredentials,
    ) -> None:
        self.mode = mode
        self.exchanger = exchanger
        self._broadcast = broadcast_credentials

    def __repr__(self) -> str:
        return f"HopTokens(mode={self.mode.value!r}, {self.exchanger!r})"

    async def for_user(self, user_token: str, *, audience: str, scopes: Iterable[str]) -> HopToken:
        """A token for ``audience`` acting for the user: exchanged, or (forward) the same."""
        if self.mode is Propagation.FORWARD:
            return HopToken(user_token, None)
        try:
            token = await self.exchanger.token_for(user_token, audience=audience, scopes=scopes)
        except (HopAuthError, httpx.HTTPError) as exc:
            raise _token_problem(exc) from None
        return HopToken(token, self.exchanger.dpop_key)

    async def for_customer(
        self, staff_token: str, customer_id: str, *, audience: str, scopes: Iterable[str]
    ) -> HopToken:
        """A token for ``audience`` acting for a customer, the staff member as actor.

        RFC 8693 delegation through the issuer's ``requested_subject``
        extension (the gateway holds no token of the customer's): ``sub`` = the
        customer, ``act`` = gateway over the staff member, the staff member's
        ``sid``. Not cached: support looks are rare, and each is a decision the
        issuer makes and logs. In forward mode nothing can say "carol for
        alice": the staff member's own token goes on, and the service sees only her.
        """
        if self.mode is Propagation.FORWARD:
            return HopToken(staff_token, None)
        endpoint = self.exchanger.endpoint
        try:
            response = await endpoint.delegate(
                actor_token=staff_token,
                requested_subject=customer_id,
                audience=audience,
                scopes=scopes,
            )
        except TokenRequestError as exc:
            # The edge has just validated the staff token (signature, expiry, revocation),
            # so a 4xx here is the issuer's policy saying no: this customer, this actor.
            if exc.status_code < 500 and exc.error in _SUBJECT_REFUSED | _POLICY_REFUSED:
                log.info("the issuer refused to delegate: %s", exc.error)
                raise Problem(
                    403,
                    "Forbidden",
                    "the issuer does not let you act for this customer",
                    type_=PROBLEMS + "delegation-refused",
                ) from None
            raise _token_problem(exc) from None
        except (HopAuthError, httpx.HTTPError) as exc:
            raise _token_problem(exc) from None
        # The endpoint checked token_type: DPoP when it has a key (RFC 9449 §5).
        return HopToken(response.access_token, endpoint.dpop_key)

    async def for_broadcast(self) -> HopToken:
        """The gateway's own client-credentials token for notification: no user context.

        Obtained here, not inside the downstream call, so a failing issuer is
        reported as such rather than as a failing notification service.
        """
        try:
            token = await self._broadcast.token()
        except (HopAuthError, httpx.HTTPError) as exc:
            raise _token_problem(exc) from None
        return HopToken(token, self._broadcast.dpop_key)

    async def refused(self, broadcast_token: HopToken) -> None:
        """Notification refused our token (keys rotated, token revoked): drop it."""
        await self._broadcast.invalidate(broadcast_token.value)


def _token_problem(exc: Exception) -> Problem:
    if isinstance(exc, httpx.TimeoutException):
        return timed_out("auth")
    if isinstance(exc, httpx.HTTPError):
        return unavailable("auth")
    if isinstance(exc, TokenRequestError) and exc.status_code < 500:
        if exc.error in _SUBJECT_REFUSED:
            log.info("the issuer refused to exchange a user token: %s", exc.error)
            return HeaderProblem(
                401,
                "Unauthorized",
                "the issuer no longer accepts this token; sign in again",
                headers={"WWW-Authenticate": f'Bearer realm="{AUDIENCE}", error="invalid_token"'},
                type_="urn:hopauth:problem:invalid-token",
            )
        if exc.error in _POLICY_REFUSED:
            log.info("the issuer refused a token for this call: %s", exc.error)
            return Problem(
                403,
                "Forbidden",
                "the issuer does not grant a token for this call",
                type_=PROBLEMS + "exchange-refused",
            )
    # invalid_client, unauthorized_client, a 5xx, a malformed answer: our misconfiguration
    # or the issuer's failure, not something the caller can fix.
    log.error("token request failed: %s", exc)
    return bad_gateway("auth", "the gateway could not obtain a token for this call")
