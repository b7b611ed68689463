from __future__ import annotations

import httpx
from auth_testing import claims, client_credentials, exchange, login


def test_login_and_exchange(http: httpx.Client) -> None:
    alice = login(http, "alice")
    assert claims(alice.access_token)["aud"] == "gateway"
    response = exchange(http, "gateway", alice.access_token, "order", "orders:read")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "orders:read"
    assert claims(body["access_token"])["act"] == {"sub": "gateway"}
    cc = client_credentials(http, "billing-worker", None)
    assert cc.status_code == 200, cc.text
