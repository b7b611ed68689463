"""CORS at the token endpoints: the web UI, a public client, redeems its code in the browser."""

from __future__ import annotations

import httpx


def test_the_web_ui_origin_may_redeem_codes_from_the_browser(http: httpx.Client) -> None:
    allowed = http.options(
        "/token",
        headers={"Origin": "http://127.0.0.1:8000", "Access-Control-Request-Method": "POST"},
    )
    assert allowed.headers["access-control-allow-origin"] == "http://127.0.0.1:8000"
    other = http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"Origin": "https://evil.example"},
    )
    assert "access-control-allow-origin" not in other.headers


def test_a_browser_post_gets_cors_headers_and_a_service_call_none(http: httpx.Client) -> None:
    body = {"grant_type": "client_credentials"}
    auth = ("billing-worker", "billing-worker-dev-secret")
    browser = http.post("/token", data=body, auth=auth, headers={"Origin": "http://127.0.0.1:8000"})
    assert browser.headers["access-control-allow-origin"] == "http://127.0.0.1:8000"
    service = http.post("/token", data=body, auth=auth)
    assert service.status_code == 200
    assert not any(name.startswith("access-control-") for name in service.headers)
