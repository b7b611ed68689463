"""What a client of the system does: log in like a browser, call the gateway, wait for events."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx

REDIRECT_URI = "http://127.0.0.1:8000/callback"
# What the web UI asks for; the issuer grants the support:* scopes to support staff only.
SCOPES = "orders:read orders:write billing:read notifications:read support:read support:broadcast"
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"

T = TypeVar("T")


@dataclass(frozen=True)
class System:
    """Where the system under test answers."""

    gateway: str
    auth: str
    kafka: str | None
    env: dict[str, str]


def free_ports(names: Iterable[str]) -> dict[str, int]:
    """A port nothing listens on for each name, all different.

    The sockets are held open together: drawn one at a time, the kernel may hand
    out the same port twice, and two components of one stack would clash.
    """
    with contextlib.ExitStack() as held:
        sockets = {name: held.enter_context(socket.socket()) for name in names}
        for sock in sockets.values():
            sock.bind(("127.0.0.1", 0))
        return {name: int(sock.getsockname()[1]) for name, sock in sockets.items()}


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636 §4.1, §4.2)."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def authorize(
    auth: httpx.Client, username: str, redirect_uri: str = REDIRECT_URI, scope: str = SCOPES
) -> tuple[str, str]:
    """Log in through the HTML form; returns (code, code_verifier).

    The 302 must send the browser to ``redirect_uri`` itself (RFC 6749 §4.1.2)
    with the code and the state it was given.
    """
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": "web",
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    form_page = auth.get("/authorize", params=params)
    assert form_page.status_code == 200, form_page.text
    form = {"username": username, "password": f"{username}-dev-password"}
    redirect = auth.post("/authorize", params=params, data=form)
    assert redirect.status_code == 302, redirect.text
    location = urlsplit(redirect.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri, location
    query = parse_qs(location.query)
    assert query["state"] == [params["state"]]
    return query["code"][0], verifier


def redeem(
    auth: httpx.Client,
    code: str,
    verifier: str,
    redirect_uri: str = REDIRECT_URI,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """The code for tokens at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5)."""
    return auth.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": "web",
            "code_verifier": verifier,
        },
        headers=headers or {},
    )


def login(
    auth_url: str, username: str, scope: str = SCOPES, redirect_uri: str = REDIRECT_URI
) -> str:
    """Authorization code + PKCE through the HTML login form, as the web UI does."""
    with httpx.Client(base_url=auth_url, timeout=15) as auth:
        code, verifier = authorize(auth, username, redirect_uri, scope)
        token = redeem(auth, code, verifier, redirect_uri)
        assert token.status_code == 200, token.text
        access_token: str = token.json()["access_token"]
        return access_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def eventually(check: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    """Poll until ``check`` returns something truthy: events take a moment to flow."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def available(gateway: httpx.Client, product_id: int) -> int:
    products: list[dict[str, Any]] = gateway.get("/api/products").json()
    [product] = [p for p in products if p["id"] == product_id]
    stock: int = product["available"]
    return stock
