"""The demo page, its configuration, and the headers that keep its token to itself."""

from __future__ import annotations

import httpx
import pytest

#: The Host a browser at the test gateway's public URL (the default) sends: the pages
#: are served there only (elsewhere they redirect, test_ui_origin).
AT_PUBLIC_URL = {"Host": "127.0.0.1:8000"}


@pytest.mark.parametrize("path", ["/", "/callback"])
def test_the_page_is_served_at_root_and_callback(http: httpx.Client, path: str) -> None:
    params = {"code": "x", "state": "y"} if path == "/callback" else None
    response = http.get(path, params=params, headers=AT_PUBLIC_URL)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script src="/app.js"' in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert response.headers["referrer-policy"] == "no-referrer"


def test_script_and_styles(http: httpx.Client) -> None:
    script = http.get("/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "code_challenge_method" in script.text
    assert "localStorage" not in script.text.replace("never in localStorage", "")
    assert http.get("/app.css").headers["content-type"].startswith("text/css")


def test_the_page_sends_one_idempotency_key_per_checkout(http: httpx.Client) -> None:
    script = http.get("/app.js").text
    checkout = script[script.index("async function placeOrder") :]
    checkout = checkout[: checkout.index("\n}\n")]
    # Made once per click, before the attempts that all send it; a click after attempts
    # that all went unanswered reuses it (the map is cleared on any definite answer).
    assert checkout.index("idempotencyKey()") < checkout.index("for (let attempt")
    assert "unsettled.get(checkout) || idempotencyKey()" in checkout
    assert '"Idempotency-Key": key' in checkout
    assert checkout.count("unsettled.delete(checkout)") == 2
    assert "crypto.randomUUID" in script
    # A button stays disabled until its click has an answer: a double click orders once.
    clicked = script[script.index("function button(") :]
    clicked = clicked[: clicked.index("\n}\n")]
    assert clicked.index("b.disabled = true") < clicked.index("await onClick()")
    assert "finally" in clicked and "b.disabled = false" in clicked


def test_config_points_the_page_at_the_issuer(http: httpx.Client, issuer: str) -> None:
    config = http.get("/config.json").json()
    assert config["issuer"] == issuer
    assert config["authorization_endpoint"] == f"{issuer}/authorize"
    assert config["token_endpoint"] == f"{issuer}/token"
    assert config["client_id"] == "web"
    assert config["redirect_uri"] == "http://127.0.0.1:8000/callback"
    assert set(config["scope"].split()) >= {"orders:read", "orders:write", "billing:read"}
    assert issuer in http.get("/", headers=AT_PUBLIC_URL).headers["content-security-policy"]


def test_the_issuer_lets_the_page_redeem_its_code(auth: httpx.Client) -> None:
    """The CORS the page relies on: a preflighted POST from the gateway's origin."""
    preflight = auth.options(
        "/token",
        headers={
            "Origin": "http://127.0.0.1:8000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == "http://127.0.0.1:8000"


def test_health(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"redis": "ok"}
