"""Where the token for each downstream hop comes from.

``exchange`` (the default): the user's token is exchanged at the issuer for one
made for the next service alone (RFC 8693: ``aud`` = that service, the
smallest scope the call needs, ``act`` = gateway). One
:class:`~hopauth.TokenExchanger` per process caches them per (user token,
audience, scopes); its ``stats`` are the exchange-cache hit rate.

``forward`` (the vulnerable teaching mode): the user's own token goes
downstream unchanged, so every service behind the gateway holds a token that
would also open every other one. Calls with no user behind them (broadcasts)
use the gateway's client-credentials token in both modes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import httpx
from hopauth import ClientCredentials, HopAuthError, TokenExchanger, TokenRequestError
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

    async def for_user(self, user_token: str, *, audience: str, scopes: Iterable[str]) -> str:
        """A token for ``audience`` acting for the user: exchanged, or (forward) the same."""
        if self.mode is Propagation.FORWARD:
            return user_token
        try:
            return await self.exchanger.token_for(user_token, audience=audience, scopes=scopes)
        except (HopAuthError, httpx.HTTPError) as exc:
            raise _token_problem(exc) from None

    async def for_broadcast(self) -> str:
        """The gateway's own client-credentials token for notification: no user context.

        Obtained here, not inside the downstream call, so a failing issuer is
        reported as such rather than as a failing notification service.
        """
        try:
            return await self._broadcast.token()
        except (HopAuthError, httpx.HTTPError) as exc:
            raise _token_problem(exc) from None

    async def refused(self, broadcast_token: str) -> None:
        """Notification refused our token (keys rotated, token revoked): drop it."""
        await self._broadcast.invalidate(broadcast_token)


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
