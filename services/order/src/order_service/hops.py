"""Where the token for order's hop to inventory comes from, on a customer's behalf.

``exchange`` (the default): the token order received (``aud=order``, ``act``
= gateway) is exchanged at the issuer for one made for inventory alone
(RFC 8693 §2: ``aud=inventory``, ``inventory:reserve``, ``act`` = order over
gateway). :class:`~hopauth.TokenExchanger` caches it.

``forward`` (the vulnerable teaching mode): the token order received, the
customer's own login token, goes on to inventory unchanged. Inventory then
holds a token that would also open the gateway, billing and notification.

Calls with no user behind them (release and commit after a payment event,
the expiry job) use client credentials in both modes: there is no user token
to forward. This module is the one place that picks.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable

import httpx
from hopauth import TokenExchangeAuth, TokenExchanger
from hopkit.settings import Propagation


class HopTokens:
    """The ``httpx.Auth`` for a call made for a customer, by the propagation mode."""

    def __init__(self, mode: Propagation, exchanger: TokenExchanger) -> None:
        self.mode = mode
        self.exchanger = exchanger

    def __repr__(self) -> str:
        return f"HopTokens(mode={self.mode.value!r}, {self.exchanger!r})"

    def for_user(self, user_token: str, *, audience: str, scopes: Iterable[str]) -> httpx.Auth:
        """Auth for ``audience`` acting for the user: an exchanged token, or (forward) the same."""
        if self.mode is Propagation.FORWARD:
            return ForwardedToken(user_token)
        return TokenExchangeAuth(self.exchanger, user_token, audience=audience, scopes=scopes)


class ForwardedToken(httpx.Auth):
    """Sends the caller's token on as it came (RFC 6750 §2.1): the forward-mode hop."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "ForwardedToken(...)"  # never the token itself

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request
