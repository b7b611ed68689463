"""Helpers for the auth service tests: real servers on loopback, and OAuth flows over HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from auth_service.config import Settings

# Re-exported for the test modules: the servers come from hopkit's test kit.
from hopkit.testing import ServerThread as ServerThread
from hopkit.testing import ValkeyServer as ValkeyServer
from hopkit.testing import free_port as free_port


def make_settings(tmp: Path, port: int, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "issuer": f"http://127.0.0.1:{port}",
        "database_url": f"sqlite:///{tmp / 'auth.db'}",
        "json_logs": False,
        "access_log": False,
        **overrides,
    }
    return Settings.model_validate(values)


REDIRECT_URI = "http://127.0.0.1:8000/callback"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def authorize_params(challenge: str, state: str = "st4te", **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": "web",
        "redirect_uri": REDIRECT_URI,
        "scope": "orders:read orders:write billing:read notifications:read support:read "
        "support:broadcast",
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


def authorization_code(
    http: httpx.Client, username: str, password: str | None = None
) -> tuple[str, str]:
    """Log in through the HTML form; returns (code, code_verifier)."""
    verifier, challenge = pkce_pair()
    params = authorize_params(challenge)
    form = http.get("/authorize", params=params)
    assert form.status_code == 200, form.text
    posted = http.post(
        "/authorize",
        params=params,
        data={"username": username, "password": password or f"{username}-dev-password"},
    )
    assert posted.status_code == 302, posted.text
    location = urlsplit(posted.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == ["st4te"]
    return query["code"][0], verifier


def redeem(
    http: httpx.Client, code: str, verifier: str, proof: str | None = None
) -> httpx.Response:
    """The code for tokens (RFC 6749 §4.1.3, RFC 7636 §4.5); with a DPoP ``proof``, bound ones."""
    return http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": "web",
            "code_verifier": verifier,
        },
        headers={"DPoP": proof} if proof is not None else {},
    )


@dataclass
class Login:
    access_token: str
    refresh_token: str
    scope: str


def login(http: httpx.Client, username: str) -> Login:
    code, verifier = authorization_code(http, username)
    response = redeem(http, code, verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    return Login(body["access_token"], body["refresh_token"], body["scope"])


def secret(client_id: str) -> tuple[str, str]:
    return client_id, f"{client_id}-dev-secret"


def exchange(
    http: httpx.Client,
    client_id: str,
    subject_token: str,
    audience: str | list[str] | None,
    scope: str | None = None,
    **extra: str,
) -> httpx.Response:
    data: dict[str, Any] = {
        "grant_type": EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        **extra,
    }
    if audience is not None:
        data["audience"] = audience
    if scope is not None:
        data["scope"] = scope
    return http.post("/token", data=data, auth=secret(client_id))


def client_credentials(
    http: httpx.Client, client_id: str, audience: str | None, scope: str | None = None
) -> httpx.Response:
    data = {"grant_type": "client_credentials"}
    if audience is not None:
        data["audience"] = audience
    if scope is not None:
        data["scope"] = scope
    return http.post("/token", data=data, auth=secret(client_id))


# -- tokens the services' tests stand on, each request asserted to succeed --------------


def exchanged(
    http: httpx.Client, client_id: str, subject_token: str, audience: str, scope: str
) -> str:
    """Token exchange (RFC 8693 §2.1) by ``client_id``: the token issued for ``audience``."""
    response = exchange(http, client_id, subject_token, audience, scope)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def gateway_token(http: httpx.Client, username: str, audience: str, scope: str) -> str:
    """Exactly what the gateway does: the user logs in (code + PKCE), the gateway exchanges."""
    return exchanged(http, "gateway", login(http, username).access_token, audience, scope)


def service_token(http: httpx.Client, client_id: str, audience: str, scope: str) -> str:
    """``client_id``'s own token (client credentials, RFC 6749 §4.4) for ``audience``."""
    response = client_credentials(http, client_id, audience, scope)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def claims(token: str) -> dict[str, Any]:
    """Decode without verification: the tests check what the issuer put in."""
    import jwt

    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def tampered(token: str, subject: str = "mallory") -> str:
    """The same JWT with another ``sub``: its signature no longer matches (RFC 7515 §5.2)."""
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["sub"] = subject
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def bad_token(kind: str, auth_server: Any, user_token: str, scope: str) -> str:
    """A token every service refuses, forward mode too: 401 ``invalid_token`` (RFC 6750 §3.1).

    ``forged``: ``user_token`` with another subject, so its signature no longer
    matches; ``expired``: the running issuer's own, for the gateway with ``scope``,
    two minutes past its ``exp``; ``junk``: not a JWT at all.
    """
    if kind == "forged":
        return tampered(user_token)
    if kind == "expired":
        return mint(auth_server, audience="gateway", client_id="web", scopes=[scope], lifetime=-120)
    if kind == "junk":
        return "junk"
    raise ValueError(f"no such bad token: {kind}")


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == error, response.text
    assert response.headers.get("cache-control") == "no-store"


def mint(server: Any, **kwargs: Any) -> str:
    """A token signed by the running issuer's own key, for cases no flow produces."""
    tokens = server.app.state.oauth_server.context.tokens
    defaults: dict[str, Any] = {
        "subject": "user-x",
        "audience": "gateway",
        "client_id": "web",
        "scopes": ["orders:read"],
        "lifetime": 300,
    }
    issued = tokens.mint(**{**defaults, **kwargs})
    token: str = issued.access_token
    return token
