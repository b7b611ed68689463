"""The OAuth requests the harness makes: logins, refreshes, revocations, exchanges, and the
token each hop receives.

"The token billing receives" is obtained the way that hop receives it. In
secure mode that is an RFC 8693 exchange by the gateway for ``aud=billing``,
made here with the demo realm's gateway client secret and a DPoP key of the
harness' own, so the token is bound to a key the harness holds; in vulnerable
mode it is the user's own gateway token, which is what forwarding hands
billing. Either way it is a harness shortcut for "captured in flight".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from dpop_proofs import ProofKey
from stacks import Target

WEB_CLIENT = "web"
REDIRECT_URI = "http://127.0.0.1:8000/callback"
CUSTOMER_SCOPES = "orders:read orders:write billing:read notifications:read"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN


def client_secret(client_id: str) -> str:
    """The demo realm's secret for a confidential client (DESIGN.md: development only)."""
    return f"{client_id}-dev-secret"


def claims(token: str) -> dict[str, Any]:
    """A JWT's payload, decoded WITHOUT verification: to read or copy it, never to trust it."""
    try:
        payload = token.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error) as exc:
        raise AssertionError(f"not a JWT: {exc}") from None
    assert isinstance(decoded, dict)
    return decoded


def token_endpoint(target: Target) -> str:
    return f"{target.auth}/token"


# --- the user's side: authorization code + PKCE through the login form ---------


@dataclass(frozen=True)
class Authorization:
    code: str
    verifier: str


@dataclass(frozen=True)
class Login:
    access_token: str
    refresh_token: str | None
    claims: dict[str, Any]

    @property
    def sub(self) -> str:
        return str(self.claims["sub"])


def authorize(target: Target, username: str, scope: str = CUSTOMER_SCOPES) -> Authorization:
    """RFC 6749 §4.1.1 with PKCE S256 (RFC 7636): the login form, posted like a browser does."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": WEB_CLIENT,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    form = target.issuer.get("/authorize", params=params)
    assert form.status_code == 200, form.text
    credentials = {"username": username, "password": f"{username}-dev-password"}
    redirect = target.issuer.post("/authorize", params=params, data=credentials)
    assert redirect.status_code == 302, redirect.text
    query = parse_qs(urlsplit(redirect.headers["location"]).query)
    assert query["state"] == [params["state"]]
    return Authorization(query["code"][0], verifier)


def redeem(target: Target, authorization: Authorization) -> httpx.Response:
    """RFC 6749 §4.1.3: the code and its PKCE verifier for tokens."""
    return target.issuer.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": authorization.code,
            "redirect_uri": REDIRECT_URI,
            "client_id": WEB_CLIENT,
            "code_verifier": authorization.verifier,
        },
    )


def as_login(response: httpx.Response) -> Login:
    assert response.status_code == 200, response.text
    body = response.json()
    return Login(body["access_token"], body.get("refresh_token"), claims(body["access_token"]))


def login(target: Target, username: str, scope: str = CUSTOMER_SCOPES) -> Login:
    return as_login(redeem(target, authorize(target, username, scope)))


def refresh(target: Target, refresh_token: str) -> httpx.Response:
    """RFC 6749 §6, as the public web client."""
    return target.issuer.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "web"},
    )


def revoke(target: Target, token: str) -> httpx.Response:
    """RFC 7009: the web client logs the user out by revoking the access token."""
    return target.issuer.post(
        "/revoke", data={"token": token, "token_type_hint": "access_token", "client_id": "web"}
    )


# --- the services' side: exchange and client credentials -----------------------


def _dpop_header(target: Target, key: ProofKey | None) -> dict[str, str]:
    return {} if key is None else {"DPoP": key.proof("POST", token_endpoint(target))}


def exchange(
    target: Target,
    client_id: str,
    subject_token: str,
    audience: str,
    scope: str | None = None,
    key: ProofKey | None = None,
) -> httpx.Response:
    """RFC 8693 §2.1 as service ``client_id``; with ``key``, a DPoP proof (RFC 9449 §5)."""
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": audience,
    }
    if scope is not None:
        form["scope"] = scope
    return target.issuer.post(
        "/token",
        data=form,
        auth=(client_id, client_secret(client_id)),
        headers=_dpop_header(target, key),
    )


def delegate(
    target: Target, actor: Login, requested_subject: str, scope: str = "orders:read"
) -> httpx.Response:
    """hopshop's RFC 8693 extension for support access, as the gateway asks for it: a token
    for the customer ``requested_subject``, with ``actor`` (support staff) in ``act``."""
    return target.issuer.post(
        "/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "actor_token": actor.access_token,
            "actor_token_type": ACCESS_TOKEN_TYPE,
            "requested_subject": requested_subject,
            "audience": "order",
            "scope": scope,
        },
        auth=("gateway", client_secret("gateway")),
    )


def client_credentials(
    target: Target,
    client_id: str,
    scope: str | None = None,
    audience: str | None = None,
    key: ProofKey | None = None,
) -> httpx.Response:
    """RFC 6749 §4.4 as service ``client_id``."""
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    if audience is not None:
        form["audience"] = audience
    return target.issuer.post(
        "/token",
        data=form,
        auth=(client_id, client_secret(client_id)),
        headers=_dpop_header(target, key),
    )


# --- a token as a hop holds it --------------------------------------------------


@dataclass(frozen=True)
class HopToken:
    """A token as a hop received it, and the DPoP key it is bound to (``None``: a bearer token)."""

    token: str
    key: ProofKey | None

    @property
    def claims(self) -> dict[str, Any]:
        return claims(self.token)

    def headers(self, client: httpx.Client, method: str, path: str) -> dict[str, str]:
        """Presented as its holder presents it: ``DPoP`` + a fresh proof when bound, else Bearer.

        Replaying it at another service this way gives the attacker the most
        power (even the key), so the only check left to stop it is the one the
        attack is about.
        """
        if self.key is None:
            return {"Authorization": f"Bearer {self.token}"}
        url = str(client.base_url.join(path))
        return {
            "Authorization": f"DPoP {self.token}",
            "DPoP": self.key.proof(method, url, access_token=self.token),
        }


def issued(response: httpx.Response, key: ProofKey | None) -> HopToken:
    """The token of a token-endpoint answer; bound to ``key`` when the server says DPoP."""
    assert response.status_code == 200, response.text
    body = response.json()
    bound = str(body.get("token_type", "")).lower() == "dpop"
    return HopToken(body["access_token"], key if bound else None)


def hop_token(target: Target, user: Login, audience: str, scope: str) -> HopToken:
    """The token service ``audience`` receives when the gateway calls it for ``user``."""
    if target.mode == "vulnerable":
        return HopToken(user.access_token, None)  # forwarded unchanged
    key = ProofKey()
    return issued(exchange(target, "gateway", user.access_token, audience, scope, key), key)


def service_token(target: Target, client_id: str, audience: str | None = None) -> HopToken:
    """A worker's own client-credentials token, DPoP-bound in secure mode as the worker's is."""
    key = ProofKey() if target.mode == "secure" else None
    return issued(client_credentials(target, client_id, audience=audience, key=key), key)
