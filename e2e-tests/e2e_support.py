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
SCOPES = "orders:read orders:write billing:read notifications:read support:read"
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


def login(auth_url: str, username: str, scope: str = SCOPES) -> str:
    """Authorization code + PKCE through the HTML login form, as the web UI does."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    params = {
        "response_type": "code",
        "client_id": "web",
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    with httpx.Client(base_url=auth_url, timeout=15) as auth:
        assert auth.get("/authorize", params=params).status_code == 200
        form = {"username": username, "password": f"{username}-dev-password"}
        redirect = auth.post("/authorize", params=params, data=form)
        assert redirect.status_code == 302, redirect.text
        query = parse_qs(urlsplit(redirect.headers["location"]).query)
        assert query["state"] == [params["state"]]
        token = auth.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": REDIRECT_URI,
                "client_id": "web",
                "code_verifier": verifier,
            },
        )
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
