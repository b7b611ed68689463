"""The web UI's login, step by step as the browser takes it, on the stack's own ports.

The e2e stack runs on free ports, not DESIGN.md's 8000/8001, so this checks what a
moved gateway needs: ``/config.json`` names this gateway's callback, the issuer has
it registered (exact match, RFC 9700 §4.1.1) and lets this gateway's origin redeem
the code from the browser (CORS), and the token it gets works at the gateway.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from e2e_support import System, authorize, bearer, redeem


@pytest.fixture(scope="module")
def web_config(gateway: httpx.Client) -> dict[str, str]:
    response = gateway.get("/config.json")
    assert response.status_code == 200, response.text
    config: dict[str, str] = response.json()
    return config


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def test_the_web_ui_is_told_this_gateway_and_this_issuer(
    system: System, web_config: dict[str, str]
) -> None:
    assert web_config["redirect_uri"] == f"{system.gateway}/callback"
    assert web_config["client_id"] == "web"
    assert web_config["token_endpoint"] == f"{system.auth}/token"
    assert web_config["authorization_endpoint"] == f"{system.auth}/authorize"


def test_the_issuer_sends_the_browser_back_to_this_gateway(system: System) -> None:
    # Without the stack registering it, only DESIGN.md's :8000 callback would be accepted.
    callback = f"{system.gateway}/callback"
    with httpx.Client(base_url=system.auth, timeout=15) as auth:
        code, _ = authorize(auth, "bob", callback)
    assert code


def test_a_browser_logs_in_through_this_gateways_callback(
    system: System, gateway: httpx.Client, web_config: dict[str, str]
) -> None:
    redirect_uri = web_config["redirect_uri"]
    gateway_origin = origin(system.gateway)
    # The issuer the page is sent to (the first test checks it is the stack's).
    issuer = web_config["token_endpoint"].removesuffix("/token")
    with httpx.Client(base_url=issuer, timeout=15) as auth:
        # The issuer sends the browser back to this gateway's /callback with a code.
        code, verifier = authorize(auth, "alice", redirect_uri, web_config["scope"])
        # The page redeems it cross-origin: the issuer must allow this gateway's origin.
        token = redeem(auth, code, verifier, redirect_uri, headers={"Origin": gateway_origin})
    assert token.status_code == 200, token.text
    assert token.headers.get("access-control-allow-origin") == gateway_origin

    orders = gateway.get("/api/orders", headers=bearer(token.json()["access_token"]))
    assert orders.status_code == 200, orders.text
    assert isinstance(orders.json(), list)
