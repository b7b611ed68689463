"""Who may call what: user tokens for the gateway, from the web UI, with the route's scope."""

from __future__ import annotations

import httpx
import pytest
from auth_testing import Login, exchange, login, mint
from gateway_testing import assert_problem, bearer, refresh
from hopkit.testing import ServerThread

ORDER = {"items": [{"product_id": 1, "quantity": 1}], "card": "4242424242424242"}

USER_ROUTES = [
    ("POST", "/api/orders"),
    ("GET", "/api/orders"),
    ("GET", "/api/orders/ord-1"),
    ("POST", "/api/orders/ord-1/cancel"),
    ("GET", "/api/invoices"),
    ("GET", "/api/notifications"),
    ("GET", "/api/support/orders/ord-1"),
    ("POST", "/api/broadcasts"),
]


@pytest.mark.parametrize(("method", "path"), USER_ROUTES)
def test_no_token_gets_a_bare_challenge(http: httpx.Client, method: str, path: str) -> None:
    response = http.request(method, path, json={})
    assert_problem(response, 401, "urn:hopauth:problem:missing-token")
    # Both schemes are offered (RFC 9110 §11.6.1): bearer, and DPoP for clients with a key.
    challenge = 'Bearer realm="gateway", DPoP algs="ES256"'
    assert response.headers["www-authenticate"] == challenge


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
def test_a_bad_token_is_refused(http: httpx.Client, token: str) -> None:
    response = http.get("/api/orders", headers=bearer(token))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert response.headers["www-authenticate"].startswith(
        'Bearer realm="gateway", error="invalid_token"'
    )


def test_a_token_for_another_audience_is_refused(
    http: httpx.Client, auth: httpx.Client, alice: Login
) -> None:
    # A genuine token of alice's, made by the gateway itself for the order service.
    for_order = exchange(auth, "gateway", alice.access_token, "order", "orders:read")
    assert for_order.status_code == 200, for_order.text
    response = http.get("/api/orders", headers=bearer(for_order.json()["access_token"]))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert "audience" in response.headers["www-authenticate"]


def test_a_gateway_token_not_from_the_web_ui_is_refused(
    http: httpx.Client, auth_server: ServerThread
) -> None:
    token = mint(
        auth_server, audience="gateway", client_id="order", subject="alice", scopes=["orders:read"]
    )
    response = http.get("/api/orders", headers=bearer(token))
    assert_problem(response, 403, "urn:hopauth:problem:forbidden-caller")


def test_a_token_without_orders_write_cannot_place_orders(
    http: httpx.Client, auth: httpx.Client
) -> None:
    session = login(auth, "alice")
    read_only = refresh(auth, session.refresh_token, "orders:read")
    response = http.post("/api/orders", json=ORDER, headers=bearer(read_only))
    assert_problem(response, 403, "urn:hopauth:problem:insufficient-scope")
    assert response.headers["www-authenticate"] == (
        'Bearer realm="gateway", error="insufficient_scope", scope="orders:write"'
    )
    cancel = http.post("/api/orders/ord-1/cancel", headers=bearer(read_only))
    assert_problem(cancel, 403, "urn:hopauth:problem:insufficient-scope")
    # Reading is still allowed: the request gets past the gateway's checks.
    assert http.get("/api/orders", headers=bearer(read_only)).status_code not in (401, 403)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/api/support/orders/ord-1", None), ("POST", "/api/broadcasts", {"message": "hi"})],
)
def test_customers_are_not_support_staff(
    http: httpx.Client, alice: Login, method: str, path: str, body: object
) -> None:
    response = http.request(method, path, json=body, headers=bearer(alice.access_token))
    assert_problem(response, 403, "urn:hopauth:problem:insufficient-scope")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"items": [], "card": "4242424242424242"},
        {"items": [{"product_id": 1, "quantity": "1"}], "card": "4242424242424242"},
        {"items": [{"product_id": 1, "quantity": 0}], "card": "4242424242424242"},
        {"items": [{"product_id": 1, "quantity": 1}], "card": "4242 4242"},
        {**ORDER, "price_cents": 1},
        [ORDER],
    ],
)
def test_a_bad_order_is_a_422_naming_the_field(
    http: httpx.Client, alice: Login, body: object
) -> None:
    response = http.post("/api/orders", json=body, headers=bearer(alice.access_token))
    problem = assert_problem(response, 422)
    assert problem["errors"]


def test_broken_json_is_a_422(http: httpx.Client, alice: Login) -> None:
    response = http.post(
        "/api/orders",
        content=b'{"items": [',
        headers={**bearer(alice.access_token), "content-type": "application/json"},
    )
    assert_problem(response, 422)


@pytest.mark.parametrize("order_id", ["..", "a/b", "x" * 65, "-lead"])
def test_a_bad_order_id_never_reaches_the_order_service(
    http: httpx.Client, alice: Login, order_id: str
) -> None:
    response = http.get(f"/api/orders/{order_id}", headers=bearer(alice.access_token))
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_a_logged_out_session_is_refused_at_the_edge(
    http: httpx.Client, auth: httpx.Client
) -> None:
    session = login(auth, "bob")
    logout = auth.post("/revoke", data={"token": session.refresh_token, "client_id": "web"})
    assert logout.status_code == 200, logout.text
    response = http.get("/api/orders", headers=bearer(session.access_token))
    assert_problem(response, 401, "urn:hopauth:problem:invalid-token")
    assert "session revoked" in response.headers["www-authenticate"]


def test_openapi_declares_the_bearer_scheme(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert document["paths"]["/api/orders"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in document["paths"]["/api/products"]["get"]
    docs = http.get("/docs")
    assert docs.status_code == 200
    # Offline workshops: Swagger UI comes from the service itself, never a CDN.
    assert "cdn." not in docs.text and "://" not in docs.text
    assert http.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    # The web UI's CSP (no inline script) would stop Swagger UI starting: UI pages only.
    assert "content-security-policy" not in docs.headers
