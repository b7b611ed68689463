"""Helpers for the auth service tests: real servers on loopback, and OAuth flows over HTTP."""

from __future__ import annotations

import base64
import hashlib
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
        "scope": "orders:read orders:write billing:read notifications:read support:read",
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


def redeem(http: httpx.Client, code: str, verifier: str) -> httpx.Response:
    return http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": "web",
            "code_verifier": verifier,
        },
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


def claims(token: str) -> dict[str, Any]:
    """Decode without verification: the tests check what the issuer put in."""
    import jwt

    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


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
